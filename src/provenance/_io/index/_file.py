"""The index file format: a small JSON header and 64-byte aligned arrays, memory-mappable.

::

    magic "PROVHIX1" | u64 header length | header JSON (utf-8) | padding | arrays

The header names each array's dtype, shape and byte offset; arrays start on a
64-byte boundary so they can be memory-mapped in place. Reading and writing
only: what the arrays mean is :mod:`provenance._io.index._hamming`'s business.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from provenance.errors import CorruptFile, ProvenanceError

_MAGIC = b"PROVHIX1"
_FORMAT_VERSION = 1
_ALIGN = 64


def _serialize(
    arrays: dict[str, np.ndarray[Any, Any]], meta: dict[str, Any]
) -> Iterator[bytes | memoryview]:
    specs: dict[str, dict[str, Any]] = {}
    # Offsets are relative to the start of the array area, which is aligned too.
    offset = 0
    for name, array in arrays.items():
        offset = -(-offset // _ALIGN) * _ALIGN
        specs[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
        offset += array.nbytes
    header = json.dumps(
        {"version": _FORMAT_VERSION, **meta, "arrays": specs}, separators=(",", ":")
    ).encode("utf-8")
    head = _MAGIC + struct.pack("<Q", len(header)) + header
    yield head + b"\0" * (-len(head) % _ALIGN)
    written = 0
    for name, array in arrays.items():
        pad = specs[name]["offset"] - written
        if pad:
            yield b"\0" * pad
        data = np.ascontiguousarray(array)
        yield memoryview(data.view(np.uint8).reshape(-1).data)
        written = specs[name]["offset"] + array.nbytes


def _deserialize(
    file: Path, *, mmap: bool
) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
    try:
        size = file.stat().st_size
        with file.open("rb") as handle:
            magic = handle.read(len(_MAGIC))
            if magic != _MAGIC:
                raise CorruptFile("not a provenance Hamming index file", path=file)
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > size:
                raise CorruptFile("index header is cut short", path=file)
            header = json.loads(handle.read(length).decode("utf-8"))
    except OSError as exc:
        raise ProvenanceError(f"cannot read index: {exc.strerror}", path=file) from None
    except (ValueError, struct.error) as exc:
        raise CorruptFile(f"index header is unreadable: {exc}", path=file) from None
    if not isinstance(header, dict) or header.get("version") != _FORMAT_VERSION:
        raise CorruptFile("unsupported index file version", path=file)
    base = len(_MAGIC) + 8 + length
    base += -base % _ALIGN
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    try:
        for name, spec in header["arrays"].items():
            dtype = np.dtype(spec["dtype"])
            shape = tuple(int(x) for x in spec["shape"])
            start = base + int(spec["offset"])
            nbytes = dtype.itemsize * math.prod(shape)
            if start + nbytes > size:
                raise CorruptFile(f"index array {name} is cut short", path=file)
            if nbytes == 0:
                arrays[name] = np.zeros(shape, dtype=dtype)
            elif mmap:
                arrays[name] = np.memmap(file, dtype=dtype, mode="r", offset=start, shape=shape)
            else:
                arrays[name] = np.fromfile(
                    file, dtype=dtype, count=math.prod(shape), offset=start
                ).reshape(shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFile(f"index header is malformed: {exc}", path=file) from None
    return header, arrays
