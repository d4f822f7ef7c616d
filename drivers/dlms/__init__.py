"""Strict DLMS/COSEM client session over gurux-dlms (client side only)."""
from .cosem_types import CosemDateTime, DataType, Typed
from .session import Authentication, DlmsSession, ObjectListEntry, SessionSettings
from .trace import FrameTrace, TraceEntry
from .transport import TcpWrapperTransport, Transport

__all__ = ["DlmsSession", "SessionSettings", "Authentication", "TcpWrapperTransport", "Transport",
           "FrameTrace", "TraceEntry", "CosemDateTime", "ObjectListEntry", "DataType", "Typed"]
