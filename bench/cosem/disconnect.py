"""Disconnect control (IC 70) as the conformance tests see it, and the bench's own reference model
of its state machine (which transitions each control mode allows)."""
from __future__ import annotations

from enum import IntEnum
from typing import Callable

from smmc_bench.drivers.dlms import DataType, DlmsSession, Typed
from smmc_bench.safety.restore import BenchLimitation

DISCONNECT_CONTROL = 70


class ControlState(IntEnum):
    DISCONNECTED = 0
    CONNECTED = 1
    READY_FOR_RECONNECTION = 2


# IC 70 transitions: letter -> (trigger, from state, to state).
TRANSITIONS = {
    "a": ("remote_reconnect", ControlState.DISCONNECTED, ControlState.READY_FOR_RECONNECTION),
    "b": ("remote_disconnect", ControlState.READY_FOR_RECONNECTION, ControlState.DISCONNECTED),
    "c": ("remote_disconnect", ControlState.CONNECTED, ControlState.DISCONNECTED),
    "d": ("remote_reconnect", ControlState.DISCONNECTED, ControlState.CONNECTED),
    "e": ("manual_reconnect", ControlState.READY_FOR_RECONNECTION, ControlState.CONNECTED),
    "f": ("manual_disconnect", ControlState.CONNECTED, ControlState.READY_FOR_RECONNECTION),
    "g": ("local_disconnect", ControlState.CONNECTED, ControlState.READY_FOR_RECONNECTION),
    "h": ("local_reconnect", ControlState.READY_FOR_RECONNECTION, ControlState.CONNECTED),
}


# The transitions each control mode allows (Blue Book, IC 70 attribute 4).
MODE_TRANSITIONS = {
    0: "",
    1: "bcfgde",
    2: "bcfgae",
    3: "bcgde",
    4: "bcgae",
    5: "bcfgdeh",
    6: "bcgdeh",
}


def expected_transition(mode: int, trigger: str, state: ControlState) -> ControlState | None:
    """The state `trigger` leads to from `state` in `mode`, or None when the mode forbids it."""
    for letter in MODE_TRANSITIONS[mode]:
        name, source, target = TRANSITIONS[letter]
        if name == trigger and source == state:
            return target
    return None


class DisconnectControl:
    def __init__(self, session: DlmsSession, obis: str) -> None:
        self._session, self.obis = session, obis

    def output_state(self) -> bool:
        return bool(self._session.get(DISCONNECT_CONTROL, self.obis, 2))

    def control_state(self) -> ControlState:
        return ControlState(int(self._session.get(DISCONNECT_CONTROL, self.obis, 3)))

    def control_mode(self) -> int:
        return int(self._session.get(DISCONNECT_CONTROL, self.obis, 4))

    def set_control_mode(self, mode: int) -> None:
        self._session.set(DISCONNECT_CONTROL, self.obis, 4, Typed(DataType.ENUM, mode))

    def remote_disconnect(self) -> None:
        self._session.action(DISCONNECT_CONTROL, self.obis, 1, Typed(DataType.INTEGER, 0))

    def remote_reconnect(self) -> None:
        self._session.action(DISCONNECT_CONTROL, self.obis, 2, Typed(DataType.INTEGER, 0))

    def invoke(self, trigger: str) -> None:
        {"remote_disconnect": self.remote_disconnect, "remote_reconnect": self.remote_reconnect}[trigger]()


# Modes where remote_reconnect from 'disconnected' leads straight to 'connected' (transition d).
MODES_WITH_DIRECT_RECONNECT = (1, 3, 5, 6)


def restore_connected(dc: DisconnectControl, supported_modes, final_mode: int,
                      press_reconnect: Callable[[], None] | None = None) -> None:
    """Bring the breaker back to 'connected' through remote methods, then set `final_mode`.

    `press_reconnect` (the emulator's button) closes a breaker a faulty meter left in
    ready_for_reconnection, so one defect does not turn every later test into an ERROR.
    """
    direct = [m for m in MODES_WITH_DIRECT_RECONNECT if m in supported_modes]
    if dc.control_state() is not ControlState.CONNECTED:
        if not direct:
            raise BenchLimitation("the profile's control modes cannot reconnect remotely: reconnect the meter by hand")
        dc.set_control_mode(direct[0])
        if dc.control_state() is ControlState.READY_FOR_RECONNECTION:
            dc.remote_disconnect()  # transition b, so that d can follow
        dc.remote_reconnect()  # transition d
        if dc.control_state() is ControlState.READY_FOR_RECONNECTION and press_reconnect is not None:
            press_reconnect()  # transition e
        state = dc.control_state()
        if state is not ControlState.CONNECTED:
            raise BenchLimitation(f"the meter did not reconnect through mode {direct[0]} (control_state "
                                  f"{state.name}): reconnect it by hand")
    if dc.control_mode() != final_mode:
        dc.set_control_mode(final_mode)


def has_transition(mode: int, trigger: str, state: ControlState) -> bool:
    return expected_transition(mode, trigger, state) is not None
