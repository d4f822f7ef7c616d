"""Physical links to meters, one module per backend: the HDLC codec (hdlc) and
transport (hdlc_transport), byte streams by pyserial URL incl. socket:// and
rfc2217:// (stream), the optical head in mode E (mode_e), the RS-485 bus
(stream.SharedPort / BusStream), the gateway (gateway) and the TCP wrapper with
a wire trace (tcp)."""
from .hdlc import Address, Frame, HdlcParameters, Kind, physical_address_from_serial
from .hdlc_transport import HdlcTransport, LinkStats
from .mode_e import Identification, OpticalStream
from .stream import BusStream, SerialStream, SharedPort

__all__ = ["Address", "Frame", "HdlcParameters", "Kind", "physical_address_from_serial", "HdlcTransport",
           "LinkStats", "Identification", "OpticalStream", "BusStream", "SerialStream", "SharedPort"]
