"""The supply-side objects of one meter under test, found through its profile."""
from __future__ import annotations

from smmc_bench.cosem.event_log import EventLog, PowerFailureLog
from smmc_bench.cosem.limiter import Limiter
from smmc_bench.cosem.push import PushSetup
from smmc_bench.cosem.register import DataValue, Register
from smmc_bench.drivers.dlms import DataType


class SupplyObjects:
    """The meter's supply-side objects over the test's session, as its profile names them."""

    def __init__(self, meter) -> None:
        session, profile = meter.session, meter.profile.supply
        objects = profile.objects
        value_type = DataType[profile.alarms.value_type.upper()]
        self.limiter = Limiter(session, objects.limiter, DataType[profile.limiter.threshold_type.upper()])
        self.power_failure_log = PowerFailureLog(session, objects.power_failure_log)
        self.power_failure_count = DataValue(session, objects.power_failure_count, DataType.LONG_UNSIGNED)
        self.long_power_failure_count = DataValue(session, objects.long_power_failure_count, DataType.LONG_UNSIGNED)
        self.long_power_failure_duration = Register(session, objects.long_power_failure_duration)
        self.alarm_register = DataValue(session, objects.alarm_register, value_type)
        self.alarm_filter = DataValue(session, objects.alarm_filter, value_type)
        self.alarm_push = PushSetup(session, objects.alarm_push_setup)
        self.voltage = Register(session, objects.instantaneous_voltage)
        self.current = Register(session, objects.instantaneous_current)
        self.active_power = Register(session, objects.instantaneous_active_power)
        self.power_event_log = EventLog(session, objects.power_event_log)
        self.limiter_event_log = EventLog(session, objects.limiter_event_log)
