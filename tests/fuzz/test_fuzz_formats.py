"""Fuzz targets for the TIFF/DNG, HEIF/AVIF and GIF parsers.

Mutated signed files (made in the run, tests/_formats.py) raise nothing but
ProvenanceError; what parses round-trips: XMP in and out, every block stripped,
and the essence hash never moves. Verify of a mutated signed file is an error or
a verdict, and never ``trusted`` unless only unsigned bytes changed. Short and
deterministic under the default ``ci`` profile; see conftest.py for the long run.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provenance._core import containers
from provenance._core.containers import BlockKind, ImageFormat, bmff, tiff
from provenance._core.hashing import hash_ranges
from provenance._io.keys import SigningKey, TrustPolicy
from provenance.errors import ProvenanceError
from provenance.sign import sign_bytes
from provenance.verify import verify_bytes
from tests._formats import NEW_FORMATS, sample
from tests.conftest import sample_record
from tests.fuzz.strategies import mutated

_KEY: list[SigningKey] = []
_IDS = [fmt.value for fmt in NEW_FORMATS]
EMPTY_TIFF = b"MM\x00*\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00"
PACKET = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'


@pytest.fixture(scope="module", autouse=True)
def _key(signing_key: SigningKey) -> None:
    _KEY[:] = [signing_key]


@cache
def signed(fmt: ImageFormat) -> bytes:
    data, _ = sign_bytes(sample(fmt), record=sample_record("forest-path.jpg"), key=_KEY[0])
    return data


@cache
def hot(fmt: ImageFormat) -> tuple[int, ...]:
    """Offsets of every block and essence range edge, and of the headers."""
    info = containers.inspect(signed(fmt))
    offsets = {0, 4, 8, 12, 16, 20, 24, 32}
    for block in info.blocks:
        offsets.update({block.offset, block.end})
    for start, end in info.essence_ranges:
        offsets.update({start, end})
    return tuple(sorted(offsets))


def _essence(data: bytes) -> str:
    return hash_ranges(data, containers.essence_ranges(data))


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=_IDS)
def test_round_trips_on_the_real_file(fmt: ImageFormat) -> None:
    original = signed(fmt)
    info = containers.inspect(original)
    assert info.format is fmt and info.xmp is not None and info.has_c2pa
    with_xmp = containers.set_xmp(original, PACKET)
    assert containers.inspect(with_xmp).xmp == PACKET
    assert _essence(with_xmp) == _essence(original)
    again = containers.set_xmp(with_xmp, PACKET + b" ")
    assert containers.inspect(again).xmp == PACKET + b" "
    stripped = containers.strip(original, frozenset(BlockKind))
    assert containers.inspect(stripped).blocks == ()
    assert _essence(stripped) == _essence(original)
    only_c2pa = containers.strip(original, frozenset({BlockKind.C2PA}))
    assert not containers.inspect(only_c2pa).has_c2pa
    assert containers.inspect(only_c2pa).xmp == info.xmp


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=_IDS)
def test_parsers_raise_only_provenance_errors_and_round_trip(fmt: ImageFormat) -> None:
    original = signed(fmt)

    @given(mutated(original, hot(fmt)))
    def check(data: bytes) -> None:
        try:
            info = containers.inspect(data)
        except ProvenanceError:
            return
        essence = hash_ranges(data, info.essence_ranges)
        assert info.essence_ranges == containers.essence_ranges(data)
        try:
            with_xmp = containers.set_xmp(data, PACKET)
        except ProvenanceError:
            return
        assert containers.inspect(with_xmp).xmp == PACKET
        assert _essence(with_xmp) == essence
        if fmt in (ImageFormat.TIFF, ImageFormat.DNG):
            # What signing does: XMP, minimal IFD0 tags, personal tags removed.
            embedded = tiff.embed(data, PACKET, tags={305: "fuzz"})
            assert containers.inspect(embedded).xmp == PACKET
            assert _essence(embedded) == essence
        if fmt in (ImageFormat.HEIC, ImageFormat.HEIF, ImageFormat.AVIF):
            # What signing does: the XMP and the Exif item in one rewrite.
            embedded = bmff.embed(data, PACKET, EMPTY_TIFF)
            assert containers.inspect(embedded).xmp == PACKET
            assert containers.inspect(embedded).exif == EMPTY_TIFF
            assert _essence(embedded) == essence
        stripped = containers.strip(data, frozenset(BlockKind))
        assert containers.inspect(stripped).blocks == ()
        assert _essence(stripped) == essence

    check()


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=_IDS)
def test_random_bytes_after_the_magic_raise_only_provenance_errors(fmt: ImageFormat) -> None:
    head = sample(fmt)[:32]

    @given(st.integers(4, 32), st.binary(max_size=512))
    def check(keep: int, tail: bytes) -> None:
        data = head[:keep] + tail
        try:
            containers.inspect(data)
            containers.set_xmp(data, PACKET)
        except ProvenanceError:
            return

    check()


@pytest.mark.parametrize("fmt", NEW_FORMATS, ids=_IDS)
def test_verify_of_mutated_signed_files_is_an_error_or_not_trusted(
    fmt: ImageFormat, trust: TrustPolicy
) -> None:
    original = signed(fmt)

    @given(mutated(original, hot(fmt)))
    def check(data: bytes) -> None:
        try:
            verdict = verify_bytes(data, trust=trust)
        except ProvenanceError:
            return
        if data != original and verdict.status.value == "trusted":
            # Only bytes no signature covers may change and stay trusted.
            assert _essence(data) == _essence(original)

    check()
