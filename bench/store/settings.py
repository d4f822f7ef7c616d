"""Where a bench's results store is: from `[store]` in bench.toml, else SQLite in the reports folder."""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, Engine, make_url

from smmc_bench.config import BenchConfig
from smmc_bench.store.database import DEFAULT_FILE, StoreError, open_store, sqlite_url


def store_url(config: BenchConfig | None, reports: Path) -> URL:
    settings = config.store if config is not None else None
    if settings is not None and settings.url:
        return make_url(settings.url)
    if settings is not None and settings.path is not None:
        path = settings.path if settings.path.is_absolute() else config.source.parent / settings.path
        return sqlite_url(path)
    return sqlite_url(reports / DEFAULT_FILE)


def open_bench_store(config: BenchConfig | None, reports: Path, url: str | None = None) -> Engine:
    """The store a command names (--store URL), else the bench's."""
    if url:
        return open_store(make_url(url) if "://" in url else sqlite_url(Path(url)))
    password = None
    settings = config.store if config is not None else None
    if settings is not None and settings.password_env:
        password = os.environ.get(settings.password_env)
        if not password:
            raise StoreError(f"store.password_env: environment variable {settings.password_env} is not set or empty")
    return open_store(store_url(config, reports), password)
