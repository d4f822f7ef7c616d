"""The bench's head-end side: a listener for DLMS pushes (DataNotification over the TCP wrapper)."""
from .listener import HeadEndListener, Notification, Rejected
from .notification import (
           MalformedNotification,
           ParsedNotification,
           parse_data_notification,
)

__all__ = ["HeadEndListener", "Notification", "Rejected", "MalformedNotification", "ParsedNotification",
           "parse_data_notification"]
