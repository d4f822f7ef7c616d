"""pytest fixtures for the bench's instruments (registered by bench.plugin)."""
