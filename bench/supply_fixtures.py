"""pytest fixtures for supply-side tests: head-end listener, local operator (registered by bench.plugin)."""
