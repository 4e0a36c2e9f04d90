"""TSSC of the deployed wire, as the sessions use it.

The project's TSSC (:mod:`gridbind.sttp.tssc`, deployed 0..31 code table) frames each block as the
deployed wire does (version byte 85, uint16 sequence number, payload), keeps encoder/decoder state
across the blocks of one subscription and splits columns into blocks of at most
:data:`MAX_BLOCK_SIZE` bytes, so a data packet stays within the peer's 32 KiB receive buffer.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Framed TSSC block bound: with the 11 bytes of response and data packet headers and the 4-byte
#: size prefix every TCP packet stays under 32 KiB.
MAX_BLOCK_SIZE = 32_000


def _module() -> Any:
    try:
        return importlib.import_module("gridbind.sttp.tssc")
    except ImportError:  # pragma: no cover - the module ships with gridbind
        return None


def tssc_available() -> bool:
    """True when TSSC can be used (then subscribers ask for it by default)."""
    return _module() is not None


def new_encoder() -> Any:
    """A fresh deployed-table TSSC encoder (``encode(ids, stamps, flags, values)`` -> blocks)."""
    module = _module()
    if module is None:
        raise RuntimeError("TSSC is not available (gridbind.sttp.tssc missing)")
    return module.TsscEncoder(module.DEPLOYED, max_block_size=MAX_BLOCK_SIZE)


def new_decoder() -> Any:
    """A fresh deployed-table TSSC decoder (``decode(block)`` -> columns)."""
    module = _module()
    if module is None:
        raise RuntimeError("TSSC is not available (gridbind.sttp.tssc missing)")
    return module.TsscDecoder(module.DEPLOYED)


def tssc_errors() -> tuple[type[BaseException], type[BaseException]]:
    """``(sequence error, decode error)`` classes of the TSSC module."""
    module = _module()
    return module.TsscSequenceError, module.TsscDecodeError
