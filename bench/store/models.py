"""The store's tables: runs, the meters each run judged (with the identity read from them), test
verdicts, measurements and the meter data the tests read (load profile, events, billing). One row per
thing a lab would query; the run record stays the evidence.

Tables are only ever added (never a column to an existing table): `create_all` then brings an older
store up to date when it is opened (database.open_store)."""
from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started: Mapped[str] = mapped_column(String(40))
    finished: Mapped[str | None] = mapped_column(String(40))
    station_id: Mapped[str] = mapped_column(String(100))
    lab: Mapped[str] = mapped_column(String(200), default="")
    operator: Mapped[str] = mapped_column(String(200), default="")
    bench_file: Mapped[str] = mapped_column(Text)
    bench_sha256: Mapped[str | None] = mapped_column(String(64))
    mutant: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(20))
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    software: Mapped[str] = mapped_column(Text, default="{}")  # JSON: versions, git commit, dirty flag
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)

    meters: Mapped[list[RunMeter]] = relationship(back_populates="run", cascade="all, delete-orphan")
    tests: Mapped[list[TestResult]] = relationship(back_populates="run", cascade="all, delete-orphan")


class RunMeter(Base):
    """A meter as one run found it: its model (the profile it was judged by) and identity."""
    __tablename__ = "run_meters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"), index=True)
    meter_id: Mapped[str] = mapped_column(String(100), index=True)
    model: Mapped[str] = mapped_column(String(200), index=True)
    profile_sha256: Mapped[str | None] = mapped_column(String(64))
    emulated: Mapped[bool] = mapped_column(Boolean)
    serial_number: Mapped[str | None] = mapped_column(String(100))
    firmware: Mapped[str | None] = mapped_column(String(100), index=True)
    logical_device_name: Mapped[str | None] = mapped_column(String(100))

    run: Mapped[Run] = relationship(back_populates="meters")


class TestResult(Base):
    __tablename__ = "test_results"
    __test__ = False  # not a pytest class

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"), index=True)
    test_id: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(300), index=True)
    aspect: Mapped[int | None] = mapped_column(Integer)
    article: Mapped[str | None] = mapped_column(String(40))
    meter_id: Mapped[str | None] = mapped_column(String(100))
    link: Mapped[str | None] = mapped_column(String(100))
    verdict: Mapped[str] = mapped_column(String(10))
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    diagnosis: Mapped[str] = mapped_column(Text, default="")

    run: Mapped[Run] = relationship(back_populates="tests")
    measurements: Mapped[list[MeasurementRow]] = relationship(back_populates="test", cascade="all, delete-orphan")
    meter_data: Mapped[list[MeterDataRow]] = relationship(back_populates="test", cascade="all, delete-orphan")


class MeasurementRow(Base):
    __tablename__ = "measurements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    test_result_id: Mapped[int] = mapped_column(ForeignKey("test_results.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)  # numeric measurements
    value_text: Mapped[str | None] = mapped_column(Text)  # observations compared for equality
    unit: Mapped[str] = mapped_column(String(20), default="")
    article: Mapped[str] = mapped_column(String(40), default="")
    passed: Mapped[bool] = mapped_column(Boolean)
    low: Mapped[float | None] = mapped_column(Float)
    high: Mapped[float | None] = mapped_column(Float)
    expected: Mapped[str | None] = mapped_column(Text)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)

    test: Mapped[TestResult] = relationship(back_populates="measurements")


class MeterDataRow(Base):
    """One row of meter data a test read: a load-profile interval, an event, a power failure or a
    billing row, as the COSEM view decoded it. Run, meter and OBIS are columns so a lab can select
    e.g. every load-profile interval a meter's firmware version produced."""
    __tablename__ = "meter_data_rows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    test_result_id: Mapped[int] = mapped_column(ForeignKey("test_results.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"), index=True)
    meter_id: Mapped[str | None] = mapped_column(String(100), index=True)
    obis: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)  # load_profile, event, power_failure, billing
    stamp: Mapped[str | None] = mapped_column(String(40))  # ISO 8601 as the meter stamped the row
    values: Mapped[str] = mapped_column(Text, default="{}")  # JSON: e.g. {"status": 0, "energy": 12.5}

    test: Mapped[TestResult] = relationship(back_populates="meter_data")
