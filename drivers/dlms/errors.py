"""One exception hierarchy for the DLMS driver.

Every exception carries `.diagnosis`: one human line saying what was attempted,
against what, and what came back; `str(exc) == exc.diagnosis`. Diagnoses are
built from request descriptors and reply codes only, never from secrets.
"""
from __future__ import annotations

import copy


class DlmsError(Exception):
    def __init__(self, diagnosis: str) -> None:
        super().__init__(diagnosis)
        self.diagnosis = diagnosis

    def __str__(self) -> str:
        return self.diagnosis

    def with_context(self, context: str) -> "DlmsError":
        """A copy of this error whose diagnosis starts with `context` (e.g. the request)."""
        clone = copy.copy(self)
        clone.diagnosis = f"{context}: {self.diagnosis}"
        clone.args = (clone.diagnosis,)
        return clone


# --- link level -------------------------------------------------------------

class LinkError(DlmsError):
    """The transport failed: nothing DLMS-level can be concluded from the peer."""


class ConnectFailed(LinkError):
    def __init__(self, diagnosis: str, *, host: str = "", port: int = 0, reason: str = "") -> None:
        super().__init__(diagnosis)
        self.host, self.port, self.reason = host, port, reason


class LinkClosed(LinkError):
    """The peer closed the connection, or the session is not connected."""


class DlmsTimeout(LinkError):
    def __init__(self, diagnosis: str, *, timeout: float = 0.0) -> None:
        super().__init__(diagnosis)
        self.timeout = timeout


class LinkOutOfStep(LinkError):
    """Frames were lost or garbled and the data link could not put itself right
    (HDLC retransmission exhausted, or the meter rejected a frame): only a new
    connection and association can recover."""


# --- protocol level ---------------------------------------------------------

class MalformedReply(DlmsError):
    """The peer answered with bytes that are not a well-formed reply."""

    def __init__(self, diagnosis: str, *, raw: bytes = b"") -> None:
        super().__init__(diagnosis)
        self.raw = raw


class InvalidCosemValue(MalformedReply, ValueError):
    """A COSEM value (e.g. a 12-byte date-time) violates its encoding rules."""


class UnsupportedFeature(DlmsError):
    """The driver does not implement what was asked (yet); nothing was sent for it."""


class AssociationRejected(DlmsError):
    def __init__(self, diagnosis: str, *, result: int, diagnostic: int, source: str = "acse-service-user") -> None:
        super().__init__(diagnosis)
        self.result, self.diagnostic, self.source = result, diagnostic, source


# --- service level ----------------------------------------------------------

DATA_ACCESS_RESULTS = {
    0: "success", 1: "hardware-fault", 2: "temporary-failure", 3: "read-write-denied",
    4: "object-undefined", 9: "object-class-inconsistent", 11: "object-unavailable",
    12: "type-unmatched", 13: "scope-of-access-violated", 14: "data-block-unavailable",
    15: "long-get-aborted", 16: "no-long-get-in-progress", 17: "long-set-aborted",
    18: "no-long-set-in-progress", 19: "data-block-number-invalid", 250: "other-reason",
}


def result_name(code: int) -> str:
    return DATA_ACCESS_RESULTS.get(code, f"result-{code}")


class ServiceError(DlmsError):
    """The meter refused a GET/SET/ACTION. `.code` is the data-access-result or
    action-result (None for exception-response and confirmed-service-error)."""

    def __init__(self, diagnosis: str, *, code: int | None = None) -> None:
        super().__init__(diagnosis)
        self.code = code


class TemporaryFailure(ServiceError):
    pass


class AccessDenied(ServiceError):
    pass


class ObjectUndefined(ServiceError):
    pass


class ObjectUnavailable(ServiceError):
    pass


class TypeUnmatched(ServiceError):
    pass


class OtherReason(ServiceError):
    pass


class ExceptionResponse(ServiceError):
    """The meter answered with an EXCEPTION-Response APDU (state / service error)."""

    def __init__(self, diagnosis: str, *, state_error: int, service_error: int,
                 invocation_counter: int | None = None) -> None:
        super().__init__(diagnosis)
        self.state_error, self.service_error = state_error, service_error
        self.invocation_counter = invocation_counter


class ConfirmedServiceFailure(ServiceError):
    """The meter answered with a confirmedServiceError APDU."""

    def __init__(self, diagnosis: str, *, service: int, error_type: int, value: int) -> None:
        super().__init__(diagnosis)
        self.service, self.error_type, self.value = service, error_type, value


_BY_CODE: dict[int, type[ServiceError]] = {
    2: TemporaryFailure, 3: AccessDenied, 4: ObjectUndefined,
    11: ObjectUnavailable, 12: TypeUnmatched, 250: OtherReason,
}


def service_error_for(code: int, diagnosis: str) -> ServiceError:
    return _BY_CODE.get(code, ServiceError)(diagnosis, code=code)


__all__ = [
    "DlmsError", "LinkError", "ConnectFailed", "LinkClosed", "DlmsTimeout", "LinkOutOfStep",
    "MalformedReply", "InvalidCosemValue", "UnsupportedFeature", "AssociationRejected",
    "ServiceError", "TemporaryFailure", "AccessDenied", "ObjectUndefined",
    "ObjectUnavailable", "TypeUnmatched", "OtherReason", "ExceptionResponse",
    "ConfirmedServiceFailure", "service_error_for", "result_name",
]


# --- security (HLS-GMAC, ciphered APDUs) --------------------------------------

class SecurityFailure(DlmsError):
    """A ciphered exchange failed the bench's own checks (GCM tag, invocation counter,
    ciphering policy, the meter's f(CtoS)); the reply's content was not used."""


class TagMismatch(SecurityFailure):
    """A ciphered reply's GCM tag does not verify: tampered, or keys that do not match."""


class ReplayedReply(SecurityFailure):
    """The meter's invocation counter did not strictly increase: a replayed or stale reply."""


class UncipheredReply(SecurityFailure):
    """The meter answered in clear in an association whose policy ciphers every APDU."""


class MeterNotAuthenticated(SecurityFailure):
    """HLS pass 4: the meter's f(CtoS) does not verify (it does not hold our keys)."""
