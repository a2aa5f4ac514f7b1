"""Verify one upload held in memory (:func:`verify_upload`); never raises on bad bytes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from provenance._core.disclosure import disclosure_for
from provenance._core.types import Status, Verdict
from provenance._io.keys import TrustPolicy
from provenance.errors import ProvenanceError
from provenance.inventory import Inventory
from provenance.verify import verify_bytes

if TYPE_CHECKING:
    pass
from provenance.integrations.dam._config import DEFAULT_MAX_BYTES

_MAX_NAME = 255


def verify_upload(
    data: bytes,
    filename: str,
    *,
    trust: TrustPolicy | None = None,
    inventory: Inventory | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Verify one uploaded file held in memory; never raises on bad bytes.

    Args:
        data: The file's bytes.
        filename: The name the uploader gave (reported back, never opened).
        trust: Trust anchors; without them a good signature is ``valid_untrusted``.
        inventory: Recognise stripped copies of known assets (``known_stripped``).
        max_bytes: Larger uploads are an ``error`` verdict, not checked.
        now: The time certificates are checked at (default: now).

    Returns:
        The verdict in ``verify --json`` form, plus ``disclosure`` (what a
        storefront should show, see :mod:`provenance._core.disclosure`).
    """
    name = _clean_name(filename)
    if len(data) > max_bytes:
        verdict = _error(
            name, f"upload is {len(data)} bytes, larger than the {max_bytes}-byte limit"
        )
    elif not data:
        verdict = _error(name, "upload is empty (0 bytes)")
    else:
        try:
            verdict = verify_bytes(data, name=name, trust=trust, inventory=inventory, now=now)
        except ProvenanceError as exc:
            verdict = _error(name, str(exc.with_path(name)))
    out = verdict.to_dict()
    out["disclosure"] = disclosure_for(verdict).to_dict()
    return out


def _error(name: str, message: str) -> Verdict:
    text = message if message.startswith(f"{name}:") else f"{name}: {message}"
    return Verdict(path=name, status=Status.ERROR, error=text)


def _clean_name(filename: str) -> str:
    # The name is echoed back, never used as a path: keep its last component,
    # printable and bounded.
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:_MAX_NAME] or "upload"
