"""Per-model AC source command tables; one module per model, registered here."""
from __future__ import annotations

from smmc_bench.drivers.instruments.ac_tables import (
    ametek_ci,
    chroma_61500,
    generic,
    keysight_ac6800,
)
from smmc_bench.drivers.instruments.ac_tables.base import (
    AcCommandTable,
    SupplyStep,
    TransientProgram,
)

TABLES: dict[str, AcCommandTable] = {
    table.model: table
    for table in (generic.TABLE, chroma_61500.TABLE, keysight_ac6800.TABLE, ametek_ci.TABLE)
}
MODELS = tuple(TABLES)


def table_for(model: str) -> AcCommandTable:
    try:
        return TABLES[model]
    except KeyError:
        raise ValueError(f"no AC source command table for model {model!r}; known: {', '.join(MODELS)}") from None


__all__ = ["AcCommandTable", "SupplyStep", "TransientProgram", "TABLES", "MODELS", "table_for"]
