"""gridbind.iec61850: IEC 61850-8-2 (ACSI mapped to MMS PDUs in XER, carried over XMPP)."""

from gridbind.iec61850.errors import Iec61850Error, InvalidArgument

__all__ = ["Iec61850Error", "InvalidArgument"]
