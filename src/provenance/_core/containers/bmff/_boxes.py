"""ISO-BMFF boxes and HEIF items as records, the bounded box walker and the format's limits."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from provenance._core.containers._types import (
    ImageFormat,
)
from provenance.errors import ContainerError

C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
"""The ``uuid`` box type of a C2PA manifest store in ISO-BMFF (C2PA 2.x, A.5)."""
XMP_CONTENT_TYPE = b"application/rdf+xml"
"""The content type of a ``mime`` item holding an XMP packet."""
MAX_BOXES = 65536
"""Most boxes a file may have (top level and inside ``meta``); more is refused."""
MAX_ITEMS = 65536
"""Most items (and extents) ``iloc`` may list; more is refused as hostile."""

_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"mif2", b"miaf"})
_METADATA_ITEMS = frozenset({b"mime", b"Exif", b"uri "})
_ESSENCE_PROPERTIES = frozenset(
    {b"hvcC", b"av1C", b"ispe", b"pixi", b"irot", b"imir", b"clap", b"lsel", b"a1op", b"a1lx"}
)


@dataclass(frozen=True, slots=True)
class _Box:
    type: bytes
    offset: int
    header: int  # bytes of header (8, 16, +16 for uuid)
    end: int
    usertype: bytes = b""

    @property
    def payload(self) -> int:
        return self.offset + self.header


@dataclass(slots=True)
class _Item:
    item_id: int
    type: bytes = b""
    content_type: bytes = b""
    infe: _Box | None = None
    method: int = 0
    reference: int = 0
    base: int = 0
    extents: list[tuple[int, int, int]] = field(default_factory=list)  # index, offset, length


@dataclass(frozen=True, slots=True)
class _Layout:
    format: ImageFormat
    top: tuple[_Box, ...]
    meta: _Box
    children: tuple[_Box, ...]
    items: dict[int, _Item]
    iloc_index_size: int
    iinf_version: int
    idat: _Box | None
    primary: int
    width: int
    height: int
    properties: tuple[_Box, ...]


def _boxes(data: bytes, start: int, end: int, budget: list[int]) -> list[_Box]:
    boxes: list[_Box] = []
    pos = start
    while pos < end:
        budget[0] -= 1
        if budget[0] < 0:
            raise ContainerError(f"more than {MAX_BOXES} boxes before offset {pos}")
        if pos + 8 > end:
            raise ContainerError(f"truncated: box header at offset {pos} runs past its parent")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise ContainerError(f"truncated: box header at offset {pos}")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos  # to the end of the parent (ISO/IEC 14496-12, 4.2)
        usertype = b""
        if kind == b"uuid":
            usertype = bytes(data[pos + header : pos + header + 16])
            header += 16
        if size < header or pos + size > end:
            raise ContainerError(
                f"truncated: {kind.decode('latin-1')!r} box at offset {pos} "
                f"({size} bytes) runs past its parent"
            )
        boxes.append(_Box(kind, pos, header, pos + size, usertype))
        pos += size
    return boxes


class _Cursor:
    """Reads big-endian integers from ``[pos, end)``, raising past ``end``."""

    def __init__(self, data: bytes, pos: int, end: int, what: str) -> None:
        self.data, self.pos, self.end, self.what = data, pos, end, what

    def take(self, size: int) -> int:
        if size == 0:
            return 0
        if self.pos + size > self.end:
            raise ContainerError(f"truncated: {self.what} at offset {self.pos}")
        value = int.from_bytes(self.data[self.pos : self.pos + size], "big")
        self.pos += size
        return value

    def raw(self, size: int) -> bytes:
        if self.pos + size > self.end:
            raise ContainerError(f"truncated: {self.what} at offset {self.pos}")
        value = bytes(self.data[self.pos : self.pos + size])
        self.pos += size
        return value

    def string(self) -> bytes:
        stop = self.data.find(b"\x00", self.pos, self.end)
        if stop < 0:
            value, self.pos = bytes(self.data[self.pos : self.end]), self.end
            return value
        value = bytes(self.data[self.pos : stop])
        self.pos = stop + 1
        return value
