"""Verification never goes on the network, and remote-only manifests say so."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import c2pa
import pytest

from provenance import SigningKey, Status, TrustPolicy, sign, verify, verify_bytes
from tests.conftest import SAMPLES, sample_record

REMOTE = "https://manifests.example.invalid/abc.c2pa"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Fail any attempt to open a connection or resolve a name."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network access attempted during verification")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


def _remote_only(key: SigningKey, image: bytes) -> bytes:
    """A JPEG whose manifest lives only at a URL (c2pa's no-embed mode)."""
    settings = {
        "builder": {"thumbnail": {"enabled": False}},
        "verify": {"verify_after_sign": False},
    }
    assert key.private_key_pem is not None
    info = c2pa.C2paSignerInfo(
        alg=b"es256",
        sign_cert=key.embedded_chain_pem,
        private_key=key.private_key_pem,
        ta_url=None,
    )
    manifest = {
        "claim_generator_info": [{"name": "test", "version": "1"}],
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/"
                            "trainedAlgorithmicMedia",
                        }
                    ]
                },
            }
        ],
    }
    out = io.BytesIO()
    with (
        c2pa.Context(
            settings=c2pa.Settings.from_dict(settings), signer=c2pa.Signer.from_info(info)
        ) as context,
        c2pa.Builder(manifest, context=context) as builder,
    ):
        builder.set_no_embed()
        builder.set_remote_url(REMOTE)
        builder.sign("image/jpeg", io.BytesIO(image), out)
    return out.getvalue()


def test_remote_only_manifest_is_reported_and_not_fetched(
    media: Callable[[str], Path], signing_key: SigningKey, trust: TrustPolicy, no_network: list[Any]
) -> None:
    data = _remote_only(signing_key, media("forest-path.jpg").read_bytes())
    verdict = verify_bytes(data, name="remote.jpg", trust=trust)
    assert verdict.status is Status.NO_PROVENANCE
    assert verdict.failure_codes == ("provenance.c2pa.remoteManifest.notFetched",)
    assert REMOTE in verdict.evidence[0].detail
    assert no_network == []


@pytest.mark.parametrize("name", SAMPLES)
def test_verification_opens_no_connection(
    name: str,
    media: Callable[[str], Path],
    signing_key: SigningKey,
    trust: TrustPolicy,
    tmp_path: Path,
    no_network: list[Any],
) -> None:
    dst = tmp_path / name
    sign(media(name), dst, record=sample_record(name), key=signing_key)
    assert verify(dst, trust=trust).status is Status.TRUSTED
    assert verify(dst).status is Status.VALID_UNTRUSTED
    assert no_network == []
