"""Data-hashed signing (issue 20) read by independent readers: c2pa's Reader and ExifTool.

JPEG and PNG are signed data-hashed: c2pa signs a claim over our hash of the file
and we place the store where c2pa would. Readers must see what they saw when
c2pa's ``Builder.sign`` wrote the file: a Trusted manifest with the same content,
at the same place, from a PEM key and from a callback (KMS-style) key, with a
parent ingredient for a rendition.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import json
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

import c2pa
import pytest
from PIL import Image

from provenance import RenditionMark, SigningKey, sign_bytes, sign_rendition
from provenance._core.containers import BlockKind, inspect
from provenance._io.keys import DevKeyPaths
from tests.conftest import SAMPLE_MEDIA, sample_record

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("exiftool") is None, reason="ExifTool is not installed"),
]

MIME = {"jpg": "image/jpeg", "png": "image/png"}
FILES = ["forest-path.jpg", "packshot-fire-truck-white.png"]
# What differs between two signatures of one asset: fresh ids, and the hash binding's
# padding (the data-hashed placeholder reserves room for ten exclusions).
_PER_SIGNATURE = ("instance_id", "label", "signature_info")


def _reader_store(
    data: bytes, mime: str, dev_keys: DevKeyPaths, *, detailed: bool = False
) -> dict[str, Any]:
    """The manifest store as c2pa's own Reader reports it, configured without our code.

    ``detailed``: c2pa's detailed report, which also lists the hard-binding assertion.
    """
    settings = {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
        "trust": {"trust_anchors": dev_keys.ca_certificate.read_text()},
    }
    with (
        c2pa.Context(settings=c2pa.Settings.from_dict(settings)) as context,
        c2pa.Reader(mime, io.BytesIO(data), context=context) as reader,
    ):
        found: dict[str, Any] = json.loads(reader.detailed_json() if detailed else reader.json())
    return found


def _active(store: Mapping[str, Any]) -> dict[str, Any]:
    manifest: dict[str, Any] = store["manifests"][store["active_manifest"]]
    return manifest


def _assertion(manifest: Mapping[str, Any], label: str) -> Any:
    (found,) = [a["data"] for a in manifest["assertions"] if a["label"] == label]
    return found


def _binding(data: bytes, mime: str, dev_keys: DevKeyPaths) -> dict[str, Any]:
    """The active manifest's ``c2pa.hash.data`` assertion, from c2pa's detailed report."""
    store = _reader_store(data, mime, dev_keys, detailed=True)
    found: dict[str, Any] = _active(store)["assertion_store"]["c2pa.hash.data"]
    return found


def _exiftool_labels(data: bytes, tmp_path: Any, name: str) -> list[str]:
    path = tmp_path / name
    path.write_bytes(data)
    done = subprocess.run(
        ["exiftool", "-args", "-G1", "-a", "-JUMBF:JUMDLabel", str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [line.partition("=")[2] for line in done.stdout.splitlines()]


def _store_span(data: bytes) -> tuple[int, int]:
    blocks = inspect(data).blocks_of(BlockKind.C2PA)
    return blocks[0].offset, blocks[-1].end


@pytest.mark.parametrize("name", FILES)
def test_data_hashed_store_reads_as_builder_sign_wrote_it(
    name: str,
    signing_key: SigningKey,
    dev_keys: DevKeyPaths,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    # Every call sign_bytes makes to sign_c2pa is made again without the slot: what
    # c2pa's Builder.sign writes for the very same staged bytes and definition.
    module = importlib.import_module("provenance.sign")
    real = module.sign_c2pa
    by_builder: list[bytes] = []

    def both(*args: Any, **kwargs: Any) -> Any:
        by_builder.append(real(*args, **{**kwargs, "slot": None})[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "sign_c2pa", both)
    data = (SAMPLE_MEDIA / name).read_bytes()
    signed, result = sign_bytes(data, record=sample_record(name), key=signing_key, name=name)
    (builder,) = by_builder
    mime = MIME[name.rsplit(".")[-1]]
    ours, theirs = _reader_store(signed, mime, dev_keys), _reader_store(builder, mime, dev_keys)
    assert ours["validation_state"] == theirs["validation_state"] == "Trusted"
    assert ours["validation_results"]["activeManifest"]["failure"] == []
    assert ours["active_manifest"] == result.active_manifest
    mine, c2pas = _active(ours), _active(theirs)
    for key in sorted(set(mine) | set(c2pas)):
        if key not in _PER_SIGNATURE:
            assert mine.get(key) == c2pas.get(key), key
    # The store sits where c2pa puts it, and the hard binding excludes exactly it: the
    # hash is the SHA-256 of the file less the store.
    start, end = _store_span(signed)
    assert start == _store_span(builder)[0]
    binding = _binding(signed, mime, dev_keys)
    assert binding["exclusions"] == [{"start": start, "length": end - start}]
    rest = hashlib.sha256(signed[:start] + signed[end:]).digest()
    assert binding["hash"] == base64.b64encode(rest).decode("ascii")
    assert (
        binding["exclusions"][0]["start"]
        == _binding(builder, mime, dev_keys)["exclusions"][0]["start"]
    )
    labels = _exiftool_labels(signed, tmp_path, name)
    assert "c2pa.signature" in labels and "dev.provenance.statement" in labels


def test_a_rendition_signed_data_hashed_carries_its_parent(
    signing_key: SigningKey, dev_keys: DevKeyPaths, tmp_path: Any
) -> None:
    name = "forest-path.jpg"
    data = (SAMPLE_MEDIA / name).read_bytes()
    signed, original = sign_bytes(data, record=sample_record(name), key=signing_key, name=name)
    small = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        image.resize((160, 120)).save(small, "JPEG", quality=85)
    child, _ = sign_rendition(
        small.getvalue(), original, key=signing_key, mark=RenditionMark.C2PA, parent_data=signed
    )
    store = _reader_store(child, "image/jpeg", dev_keys)
    assert store["validation_state"] == "Trusted"
    manifest = _active(store)
    (ingredient,) = manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["active_manifest"] == original.active_manifest
    actions = _assertion(manifest, "c2pa.actions.v2")["actions"]
    assert actions[0]["action"] == "c2pa.opened"
    start, end = _store_span(child)
    assert _binding(child, "image/jpeg", dev_keys)["exclusions"] == [
        {"start": start, "length": end - start}
    ]
    assert "c2pa.signature" in _exiftool_labels(child, tmp_path, "child.jpg")


def test_renditions_from_a_kept_parent_read_as_the_first(
    signing_key: SigningKey, dev_keys: DevKeyPaths, tmp_path: Any
) -> None:
    # c2pa reads a parent once per process (issue 20): the second and third renditions
    # take its ingredient from the archive the first one kept (a parent over 512 KiB).
    name = "packshot-tractor-wheel-alpha.png"
    data = (SAMPLE_MEDIA / name).read_bytes()
    record = sample_record("rowing-boats-sunset.jpg")
    signed, original = sign_bytes(data, record=record, key=signing_key, name=name)
    ingredients = []
    for width in (300, 200, 100):
        small = io.BytesIO()
        with Image.open(io.BytesIO(signed)) as image:
            image.convert("RGB").resize((width, width)).save(small, "JPEG", quality=85)
        child, _ = sign_rendition(
            small.getvalue(), original, key=signing_key, mark=RenditionMark.C2PA, parent_data=signed
        )
        store = _reader_store(child, "image/jpeg", dev_keys)
        assert store["validation_state"] == "Trusted"
        (ingredient,) = _active(store)["ingredients"]
        assert ingredient["active_manifest"] == original.active_manifest
        assert original.active_manifest in store["manifests"]
        ingredients.append(ingredient)
        labels = _exiftool_labels(child, tmp_path, f"child-{width}.jpg")
        # ExifTool lists both manifests: the rendition's and its parent's, carried along.
        assert labels.count("c2pa.signature") == 2
        assert "c2pa.ingredient.v3" in labels
    assert ingredients[0] == ingredients[1] == ingredients[2]


@pytest.mark.parametrize("name", FILES)
def test_a_callback_key_signs_data_hashed(
    name: str, signing_key: SigningKey, dev_keys: DevKeyPaths
) -> None:
    # A key without a PEM (a KMS or HSM): c2pa calls back into Python for the signature.
    calls: list[int] = []

    def kms(message: bytes) -> bytes:
        calls.append(len(message))
        return signing_key.sign(message)

    key = SigningKey.from_callback(kms, dev_keys.chain.read_bytes())
    data = (SAMPLE_MEDIA / name).read_bytes()
    signed, _ = sign_bytes(data, record=sample_record(name), key=key, name=name)
    store = _reader_store(signed, MIME[name.rsplit(".")[-1]], dev_keys)
    assert store["validation_state"] == "Trusted"
    assert len(calls) == 2  # the XMP statement, then the C2PA claim
