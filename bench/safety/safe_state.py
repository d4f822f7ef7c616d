"""After an interrupted run: check, and where needed restore, the bench's safe state, and say
what was found and done, one line per device, for the console and the run record.

The safe state: the AC source at nominal voltage and frequency with its output on (the meters
stay powered), the load off, every meter's breaker connected. The fixtures have already tried
to put each back (the AC source guard, the load fixture, each test's own restores); this reads
each back through a fresh connection, so the report rests on what the devices answer now.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from smmc_bench.cosem.disconnect import ControlState, DisconnectControl
from smmc_bench.drivers.dlms import FrameTrace
from smmc_bench.drivers.dlms.errors import DlmsError
from smmc_bench.drivers.instruments import InstrumentError
from smmc_bench.instruments import open_ac_source, open_load

if TYPE_CHECKING:
    from smmc_bench.station import Station, StationMeter

# Volts off nominal that still count as "at nominal" when read back (a source's setting resolution).
VOLTAGE_RESOLUTION_V = 0.5


def check_safe_state(station: "Station") -> list[str]:
    lines = []
    instruments = station.instruments
    if instruments.ac_source is not None:
        lines.append(_ac_source(instruments.ac_source))
    if instruments.load is not None:
        lines.append(_load(instruments.load))
    for meter in station.meters.values():
        lines.append(_meter(station, meter))
    return lines


def _ac_source(settings) -> str:
    try:
        source = open_ac_source(settings)
    except InstrumentError as exc:
        return f"AC source: NOT CHECKED, it does not answer ({exc.diagnosis}): check it by hand"
    try:
        state = _source_state(source)
        if state is None:
            return (f"AC source: at nominal {source.nominal_voltage:g} V {source.nominal_frequency:g} Hz, "
                    "output on (read back)")
        source.safe_state()
        after = _source_state(source)
        if after is None:
            return (f"AC source: was {state}; put back at nominal {source.nominal_voltage:g} V "
                    f"{source.nominal_frequency:g} Hz, output on (read back)")
        return f"AC source: NOT SAFE, {after} after the bench tried to restore it: check it by hand"
    except InstrumentError as exc:
        return f"AC source: NOT CHECKED ({exc.diagnosis}): check it by hand"
    finally:
        source.close()


def _source_state(source) -> str | None:
    """What is wrong with the source's state (None: nominal, output on)."""
    volts, hertz, on = source.voltage(), source.frequency(), source.is_on()
    wrong = []
    if abs(volts - source.nominal_voltage) > VOLTAGE_RESOLUTION_V:
        wrong.append(f"{volts:g} V")
    if abs(hertz - source.nominal_frequency) > 0.05:
        wrong.append(f"{hertz:g} Hz")
    if not on:
        wrong.append("output off")
    return ", ".join(wrong) or None


def _load(settings) -> str:
    try:
        load = open_load(settings)
    except InstrumentError as exc:
        return f"load: NOT CHECKED, it does not answer ({exc.diagnosis}): switch it off by hand"
    try:
        load.off()
        return "load: off"
    except InstrumentError as exc:
        return f"load: NOT SWITCHED OFF ({exc.diagnosis}): switch it off by hand"
    finally:
        load.close()


def _meter(station: "Station", meter: "StationMeter") -> str:
    if not meter.links:
        return f"meter {meter.id}: not started"
    if not meter.profile.has("disconnector"):
        return f"meter {meter.id}: has no disconnector (nothing to reconnect)"
    from smmc_bench.cosem.disconnect import restore_connected
    from smmc_bench.procedures import reassociate_for_restore
    from smmc_bench.safety.restore import BenchLimitation

    # A meter the interrupted test left without supply is still starting up: give it a restore's
    # patience beyond the time the profile allows a meter to answer after a restoration.
    session = station.session(meter, FrameTrace())
    try:
        reassociate_for_restore(session, station.clock, meter.profile.supply.limits.restart_time.value)
        breaker = DisconnectControl(session, meter.profile.objects.disconnect_control)
        state = breaker.control_state()
        if state is ControlState.CONNECTED and breaker.output_state():
            return f"meter {meter.id}: connected (read back)"
        restore_connected(breaker, meter.profile.disconnector.control_modes, breaker.control_mode())
        if breaker.output_state():
            return f"meter {meter.id}: was {state.name.lower()}; reconnected by the bench (read back)"
        return f"meter {meter.id}: NOT RECONNECTED, output still off after the reconnection: reconnect it by hand"
    except (DlmsError, BenchLimitation) as exc:
        return f"meter {meter.id}: NOT CHECKED ({getattr(exc, 'diagnosis', None) or exc}): check its breaker by hand"
    finally:
        session.close()
