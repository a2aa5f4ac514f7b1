"""verify reads each file once: the essence comes from the statement only when c2pa trusts it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import provenance
from provenance import Status
from provenance._core import containers
from provenance._core.hashing import essence_hash, sha256_hex
from provenance._io import reading
from provenance._io.c2pa import read_c2pa
from provenance._io.keys import SigningKey, TrustPolicy
from provenance._io.reading import read_input, read_input_view
from tests.conftest import sample_record, signed_once


@pytest.mark.parametrize("name", ["kite-blue-sky.jpg", "packshot-fire-truck-white.png"])
def test_trusted_file_reports_the_essence_it_hashes_to(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy, name: str
) -> None:
    signed, _ = provenance.sign_bytes(
        media(name).read_bytes(), record=sample_record(name), key=signing_key
    )
    verdict = provenance.verify_bytes(signed, trust=trust)
    assert verdict.status is Status.TRUSTED
    assert verdict.essence_sha256_hex == essence_hash(signed)
    assert verdict.sha256_hex == sha256_hex(signed)


def test_changed_pixels_under_a_trusted_signer_are_hashed_not_taken_from_the_statement(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy
) -> None:
    signed, result = provenance.sign_bytes(
        media("forest-path.jpg").read_bytes(),
        record=sample_record("forest-path.jpg"),
        key=signing_key,
    )
    ranges = containers.inspect(signed).essence_ranges
    start, end = ranges[-1]
    middle = (start + end) // 2
    changed = bytearray(signed)
    changed[middle] = 0x00 if changed[middle] != 0x00 else 0x01
    verdict = provenance.verify_bytes(bytes(changed), trust=trust)
    assert verdict.status is Status.TAMPERED
    assert verdict.essence_sha256_hex == essence_hash(bytes(changed))
    assert verdict.essence_sha256_hex != result.essence_sha256_hex


def test_untrusted_file_is_hashed(media: Callable[[str], Path], signing_key: SigningKey) -> None:
    signed, _ = provenance.sign_bytes(
        media("kite-blue-sky.jpg").read_bytes(),
        record=sample_record("kite-blue-sky.jpg"),
        key=signing_key,
    )
    verdict = provenance.verify_bytes(signed)  # no anchors: valid_untrusted, hashed
    assert verdict.status is Status.VALID_UNTRUSTED
    assert verdict.essence_sha256_hex == essence_hash(signed)


def test_inspect_without_essence_stops_at_the_scan(media: Callable[[str], Path]) -> None:
    data = media("rowing-boats-sunset.jpg").read_bytes()
    whole = containers.inspect(data)
    head = containers.inspect(data, essence=False)
    assert head.essence_ranges == ()
    assert (head.width, head.height, head.xmp, head.exif) == (
        whole.width,
        whole.height,
        whole.xmp,
        whole.exif,
    )
    image_data = whole.essence_ranges[0][0]
    assert head.blocks == tuple(b for b in whole.blocks if b.offset < image_data)
    # A truncated file is still refused by the whole parse, not by the head.
    truncated = data[: len(data) // 2]
    assert containers.inspect(truncated, essence=False).width == whole.width
    with pytest.raises(provenance.ContainerError, match="truncated"):
        containers.inspect(truncated)


# --- verify(path) reads into a reused buffer: same bytes, same errors, same verdicts ---


def _signed(media: Callable[[str], Path], key: SigningKey, name: str) -> bytes:
    data, _ = provenance.sign_bytes(media(name).read_bytes(), record=sample_record(name), key=key)
    return data


def _outcome(run: Callable[[], provenance.Verdict]) -> object:
    """A verdict, or the kind and message (without the path) of the error raised instead."""
    try:
        return run()
    except provenance.ProvenanceError as exc:
        return f"{type(exc).__name__}: {exc.message}"


def _same_from_path_and_bytes(
    path: Path, trust: TrustPolicy, inventory: provenance.Inventory | None = None
) -> object:
    from_path = _outcome(lambda: provenance.verify(path, trust=trust, inventory=inventory))
    from_bytes = _outcome(
        lambda: provenance.verify_bytes(
            path.read_bytes(), name=str(path), trust=trust, inventory=inventory
        )
    )
    assert from_path == from_bytes
    return from_path


def test_view_holds_each_file_as_read_input_does(media: Callable[[str], Path]) -> None:
    names = ["forest-path.jpg", "kite-blue-sky.jpg", "packshot-fire-truck-white.png"]
    paths = [media(n) for n in names]
    # Large, small, large again: the thread's buffer is reused and overwritten.
    for path in [*paths, *reversed(paths)]:
        with read_input_view(path) as view:
            assert view.readonly
            assert view.tobytes() == read_input(path)
            kept = view
        with pytest.raises(ValueError, match="released"):
            kept.tobytes()


def test_a_file_turned_down_is_read_into_bytes(
    media: Callable[[str], Path], signing_key: SigningKey
) -> None:
    unsigned = media("forest-path.jpg")
    signed = unsigned.with_name("signed.jpg")
    signed.write_bytes(_signed(media, signing_key, "forest-path.jpg"))
    shown: list[int] = []

    def c2pa_jpeg(head: memoryview) -> bool:
        shown.append(len(head))
        return head[:2] == b"\xff\xd8" and b"jumdc2pa" in head.tobytes()

    with read_input_view(unsigned, reuse_if=c2pa_jpeg) as view:
        assert isinstance(view.obj, bytes)  # read as read_input does, not into the buffer
        assert view.tobytes() == unsigned.read_bytes()
    with read_input_view(signed, reuse_if=c2pa_jpeg) as view:
        assert isinstance(view.obj, bytearray)  # the thread's buffer
        assert view.tobytes() == signed.read_bytes()
    assert shown == [64 * 1024, 64 * 1024]
    tiny = unsigned.with_name("one-byte.jpg")
    tiny.write_bytes(b"\xff")  # shorter than the head: shown whole, read, not refused here
    with read_input_view(tiny, reuse_if=c2pa_jpeg) as view:
        assert view.tobytes() == b"\xff"
    assert shown[-1] == 1


def test_a_file_over_the_limit_leaves_the_thread_buffer_alone(
    media: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    small, large = media("forest-path.jpg"), media("rowing-boats-sunset.jpg")
    monkeypatch.setattr(reading, "MAX_REUSED_BYTES", small.stat().st_size)
    with read_input_view(small) as view:
        buffer = view.obj
        assert isinstance(buffer, bytearray)
    with read_input_view(large) as view:
        assert isinstance(view.obj, bytes)  # over the limit: not read into a kept buffer
        assert view.tobytes() == large.read_bytes()
    with read_input_view(small) as view:
        assert view.obj is buffer  # the thread's buffer is still there, reused
        assert view.tobytes() == small.read_bytes()


def test_nested_views_do_not_share_a_buffer(media: Callable[[str], Path]) -> None:
    outer_path, inner_path = media("forest-path.jpg"), media("kite-blue-sky.jpg")
    with read_input_view(outer_path) as outer:
        with read_input_view(inner_path) as inner:
            assert inner.tobytes() == inner_path.read_bytes()
        assert outer.tobytes() == outer_path.read_bytes()


def test_view_refuses_what_read_input_refuses(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    large = tmp_path / "large.jpg"
    large.write_bytes(b"\xff\xd8" + bytes(100))
    cases = [(tmp_path / "missing.jpg", {}), (tmp_path, {}), (empty, {}), (fifo, {})]
    cases.append((large, {"max_bytes": 50}))
    for path, options in cases:
        with pytest.raises(provenance.ProvenanceError) as expected:
            read_input(path, **options)
        with pytest.raises(type(expected.value)) as got, read_input_view(path, **options):
            pass
        assert str(got.value) == str(expected.value)


@pytest.mark.parametrize(
    "name", ["rowing-boats-sunset.jpg", "packshot-daffodil-white.jpg", "lake-at-dusk.webp"]
)
def test_verify_of_a_path_is_verify_of_its_bytes(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    other_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
    name: str,
) -> None:
    inventory = provenance.Inventory(tmp_path / "inventory.sqlite")
    signed = tmp_path / f"signed-{name}"
    provenance.sign(media(name), signed, record=sample_record(name), key=signing_key)
    inventory.close()
    inventory = provenance.Inventory(tmp_path / "inventory.sqlite")
    foreign = tmp_path / f"foreign-{name}"
    foreign.write_bytes(_signed(media, other_key, name))
    stripped = tmp_path / f"stripped-{name}"
    stripped.write_bytes(containers.strip(signed.read_bytes(), frozenset(containers.BlockKind)))
    statuses = {
        _same_from_path_and_bytes(path, trust, inventory).status  # type: ignore[attr-defined]
        for path in (signed, foreign, stripped, media(name))
    }
    inventory.close()
    assert Status.TRUSTED in statuses
    assert Status.VALID_UNTRUSTED in statuses


@pytest.mark.parametrize("comments", [2, 18])
def test_metadata_past_the_first_prefix_is_read_further(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
    comments: int,
) -> None:
    name = "rowing-boats-sunset.jpg"  # 0.95 MB: with the comments, over 1 MB
    data = media(name).read_bytes()
    # 60 KB comments before the image data: the 64 KB prefix the fast path reads
    # first ends inside them (2), and so does the 1 MB one (18): the metadata is
    # then read from the longer prefix, or from the whole file.
    comment = b"\xff\xfe" + (60_002).to_bytes(2, "big") + b"c" * 60_000
    padded = data[:2] + comment * comments + data[2:]
    signed, _ = provenance.sign_bytes(padded, record=sample_record(name), key=signing_key)
    assert len(signed) > 1024 * 1024
    assert containers.inspect(signed).essence_ranges[0][0] > comments * 60_000
    path = tmp_path / "commented.jpg"
    path.write_bytes(signed)
    verdict = _same_from_path_and_bytes(path, trust)
    assert verdict.status is Status.TRUSTED  # type: ignore[attr-defined]


@pytest.mark.parametrize("cut", [300, 30_000, 90_000, -1000])
def test_a_file_cut_short_is_judged_alike_from_a_path(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
    cut: int,
) -> None:
    signed = _signed(media, signing_key, "forest-path.jpg")
    path = tmp_path / "cut.jpg"
    path.write_bytes(signed[:cut])
    _same_from_path_and_bytes(path, trust)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_files_are_judged_alike_from_a_path(
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
    data: st.DataObject,
) -> None:
    signed = signed_once(media, signing_key, "kite-blue-sky.jpg")
    damaged = bytearray(signed)
    for _ in range(data.draw(st.integers(1, 4))):
        # Mostly the metadata at the start, where the head is read; sometimes anywhere.
        end = data.draw(st.sampled_from([200, 40_000, len(damaged)]))
        damaged[data.draw(st.integers(0, end - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(1, len(damaged)))]
    path = tmp_path / "damaged.jpg"
    path.write_bytes(bytes(damaged))
    _same_from_path_and_bytes(path, trust)


def test_c2pa_reads_a_view_as_it_reads_bytes(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy
) -> None:
    signed = _signed(media, signing_key, "rowing-boats-sunset.jpg")
    from_bytes = read_c2pa(signed, "image/jpeg", trust)
    with memoryview(signed) as view:
        from_view = read_c2pa(view, "image/jpeg", trust)
    assert from_bytes is not None
    assert from_view == from_bytes
    assert from_view.state == "Trusted"
