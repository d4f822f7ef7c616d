"""`bench export`: the store's tables as CSV (always) or Parquet (with pyarrow installed)."""
from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from smmc_bench.store.models import Base


class ExportError(Exception):
    pass


def export(engine: Engine, folder: Path, fmt: str = "csv") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        try:
            import pyarrow
            import pyarrow.parquet
        except ImportError:
            raise ExportError("Parquet needs pyarrow: pip install 'smmc-bench[parquet]' (CSV needs nothing)") from None
    written = []
    with Session(engine) as session:
        for table in Base.metadata.sorted_tables:
            columns = [column.name for column in table.columns]
            rows = [tuple(row) for row in session.execute(select(table))]
            path = folder / f"{table.name}.{fmt}"
            if fmt == "csv":
                with path.open("w", newline="", encoding="utf-8") as out:
                    writer = csv.writer(out)
                    writer.writerow(columns)
                    writer.writerows(rows)
            else:
                data = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
                pyarrow.parquet.write_table(pyarrow.table(data), path)
            written.append(path)
    return written
