"""pytest fixtures for link-level tests (registered by bench.plugin)."""
