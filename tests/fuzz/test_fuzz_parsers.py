"""Fuzz targets for every parser: mutated real files and packets raise nothing but
ProvenanceError, and what parses round-trips.

Short and deterministic under the default ``ci`` profile; see conftest.py for
the long run.
"""

from __future__ import annotations

import contextlib
import json
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provenance._core import containers, exif, xmp
from provenance._core.containers import BlockKind
from provenance._core.hashing import hash_ranges
from provenance._core.record import ProvenanceRecord
from provenance._core.statement import parse_statement, statement_from_mapping
from provenance._io.keys import SigningKey, TrustPolicy
from provenance.errors import ProvenanceError
from provenance.sign import sign_bytes
from provenance.verify import verify_bytes
from tests.conftest import SAMPLE_MEDIA, sample_record
from tests.fuzz.strategies import mutated
from tests.hostile.corpus import BASES

FORMATS = sorted(BASES, key=lambda f: f.value)
_KEY: list[SigningKey] = []


@pytest.fixture(scope="module", autouse=True)
def _key(signing_key: SigningKey) -> None:
    _KEY[:] = [signing_key]


@cache
def signed(fmt: containers.ImageFormat) -> bytes:
    name = BASES[fmt]
    data, _ = sign_bytes(
        (SAMPLE_MEDIA / name).read_bytes(), record=sample_record(name), key=_KEY[0]
    )
    return data


@cache
def hot(fmt: containers.ImageFormat) -> tuple[int, ...]:
    """Offsets of every block header, and of the format's own headers."""
    info = containers.inspect(signed(fmt))
    offsets = {0, 4, 8, 12, 16, 20}
    for block in info.blocks:
        offsets.update({block.offset, block.end})
    for start, end in info.essence_ranges:
        offsets.update({start, end})
    return tuple(sorted(offsets))


def _essence(data: bytes) -> str:
    return hash_ranges(data, containers.essence_ranges(data))


PACKET = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.value)
def test_containers_raise_only_provenance_errors_and_round_trip(
    fmt: containers.ImageFormat,
) -> None:
    original = signed(fmt)

    @given(mutated(original, hot(fmt)))
    def check(data: bytes) -> None:
        try:
            info = containers.inspect(data)
        except ProvenanceError:
            return
        essence = hash_ranges(data, info.essence_ranges)
        assert info.essence_ranges == containers.essence_ranges(data)
        # Round trips: XMP in and out, metadata stripped, and the essence never moves.
        try:
            with_xmp = containers.set_xmp(data, PACKET)
        except ProvenanceError:
            return
        assert containers.inspect(with_xmp).xmp == PACKET
        assert _essence(with_xmp) == essence
        kinds = frozenset(BlockKind)
        stripped = containers.strip(data, kinds)
        assert containers.inspect(stripped).blocks == ()
        assert _essence(stripped) == essence
        if info.exif is not None:
            assert _essence(containers.set_exif(data, info.exif)) == essence

    check()


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.value)
def test_verify_of_mutated_signed_files_is_an_error_or_not_trusted(
    fmt: containers.ImageFormat, trust: TrustPolicy
) -> None:
    original = signed(fmt)

    @given(mutated(original, hot(fmt)))
    def check(data: bytes) -> None:
        try:
            verdict = verify_bytes(data, trust=trust)
        except ProvenanceError:
            return
        if data != original and verdict.status.value == "trusted":
            # Only bytes no signature covers may change and stay trusted: the
            # C2PA store's own wrapper, or bytes after the end of the image.
            assert _essence(data) == _essence(original)

    check()


@cache
def packet() -> bytes:
    found = containers.inspect(signed(containers.ImageFormat.JPEG)).xmp
    assert found is not None
    return found


def test_xmp_parse_packet_raises_only_provenance_errors() -> None:
    @given(st.one_of(mutated(packet(), (0, 40, 100, 200)), st.binary(max_size=512)))
    def check(data: bytes) -> None:
        try:
            prov = xmp.parse_packet(data)
        except ProvenanceError:
            return
        if prov is not None:
            again = xmp.parse_packet(xmp.build_packet(prov))
            assert again == prov
        with contextlib.suppress(ProvenanceError):
            xmp.read_properties(data)

    check()


@cache
def tiff() -> bytes:
    found = containers.inspect(signed(containers.ImageFormat.JPEG)).exif
    assert found is not None
    return found


def test_exif_sanitize_raises_only_provenance_errors_and_is_idempotent() -> None:
    @given(st.one_of(mutated(tiff(), (0, 4, 8, 10, 14, 18, 22)), st.binary(max_size=256)))
    def check(data: bytes) -> None:
        try:
            clean = exif.sanitize_exif(data)
        except ProvenanceError:
            return
        assert exif.sanitize_exif(clean.tiff).tiff == clean.tiff

    check()


def _json_values() -> st.SearchStrategy[object]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)
        ),
        max_leaves=20,
    )


@cache
def record_json() -> bytes:
    return (SAMPLE_MEDIA / "forest-path.jpg.json").read_bytes()


def test_record_parsing_raises_only_record_errors_and_round_trips() -> None:
    fields = list(json.loads(record_json()))

    @given(
        st.one_of(
            mutated(record_json(), (0, 10, 50, 100)),
            st.builds(
                lambda base, key, value: json.dumps({**base, key: value}).encode(),
                st.just(json.loads(record_json())),
                st.sampled_from(fields),
                _json_values(),
            ),
        )
    )
    def check(data: bytes) -> None:
        try:
            record = ProvenanceRecord.from_json(data)
        except ProvenanceError:
            return
        assert ProvenanceRecord.from_json(record.to_canonical_json()) == record

    check()


@cache
def statement_text() -> str:
    prov = xmp.parse_packet(packet())
    assert prov is not None
    return prov.statement


def test_statement_parsing_returns_none_or_a_statement() -> None:
    base = json.loads(statement_text())

    @given(
        st.one_of(
            mutated(statement_text().encode(), (0, 10, 40, 80)).map(
                lambda b: b.decode("utf-8", "replace")
            ),
            st.builds(
                lambda key, value: json.dumps({**base, key: value}),
                st.sampled_from(sorted(base)),
                _json_values(),
            ),
        )
    )
    def check(text: str) -> None:
        parse_statement(text)  # never raises: None or a Statement
        with contextlib.suppress(ProvenanceError, ValueError, RecursionError):
            statement_from_mapping(json.loads(text))

    check()


# --- the Magento import CSV --------------------------------------------------------------

MAGENTO_CSV = Path(__file__).parents[1] / "data" / "magento" / "products.csv"


@given(data=st.data())
def test_magento_import_csv_mutations_raise_only_provenance_errors(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """A mangled import CSV is a per-row problem or an ImportFileError, never a crash."""
    from provenance.integrations.magento import ImportOptions, ImportReport, import_csv

    original = MAGENTO_CSV.read_bytes()
    lines = [0, *(i + 1 for i, b in enumerate(original) if b in b'\n,"')]
    text = data.draw(
        st.one_of(
            mutated(original, lines),
            st.binary(max_size=512),
            st.text(alphabet=st.sampled_from('sku,;"\n\r\t\ufeff/..a:b\\'), max_size=300).map(
                lambda t: t.encode("utf-8")
            ),
        )
    )
    folder = tmp_path_factory.mktemp("csv")
    csv_path = folder / "import.csv"
    csv_path.write_bytes(text)
    images = folder / "images"
    images.mkdir()
    try:
        report = import_csv(
            csv_path,
            folder / "out",
            images_dir=images,
            key=None,
            options=ImportOptions(dry_run=True),
        )
    except ProvenanceError as exc:
        assert str(exc).startswith(str(csv_path)), str(exc)
        return
    assert isinstance(report, ImportReport)
    assert not (folder / "out").exists(), "a dry run writes nothing"


@pytest.mark.parametrize("fmt", FORMATS, ids=[f.value for f in FORMATS])
def test_prepare_for_signing_raises_only_provenance_errors_and_keeps_the_essence(
    fmt: containers.ImageFormat,
) -> None:
    original = signed(fmt)

    @given(mutated(original, hot(fmt)))
    def check(data: bytes) -> None:
        try:
            base, info, notes = containers.prepare_for_signing(data)
        except ProvenanceError:
            return
        # What it hands to signing parses, merges and hashes like the input's essence.
        assert info == containers.inspect(base)
        if info.xmp is not None:
            xmp.check_packet(info.xmp)
        assert all(note.startswith("dropped the ") for note in notes)
        with contextlib.suppress(ProvenanceError):
            original_essence = hash_ranges(data, containers.essence_ranges(data))
            assert hash_ranges(base, info.essence_ranges) == original_essence

    check()
