"""Canonical JSON: sorted keys, compact separators, UTF-8 without escapes, no NaN.

What a record is hashed and signed as, and what an audit entry's hash covers.
Pure: values in, text or bytes out.
"""

from __future__ import annotations

import json
from typing import Any

from provenance.errors import RecordError

# What json.dumps(value, sort_keys=True, ...) builds on every call, built once: a
# recorded import serialises about 40 small values (a few us each went to the encoder).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _c_encoder() -> Any:
    """The C encoder ``_CANONICAL.encode`` makes on every call (with a closure), made once.

    Without the circular-reference markers: a cycle (never in a record or an
    audit payload) ends in RecursionError instead. None where the json module
    has no C accelerator (``_CANONICAL`` then serves).
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        encode = make(
            None,  # markers
            _CANONICAL.default,
            json.encoder.encode_basestring,  # ensure_ascii=False
            None,  # indent
            ":",
            ",",
            True,  # sort_keys
            False,  # skipkeys
            False,  # allow_nan
        )
        probe = {"b": [1, 2.5, None, True], "a": "\u00e9\n"}
        same = "".join(encode(probe, 0)) == _CANONICAL.encode(probe)
    except (TypeError, ValueError):  # another Python's private signature: the slow path
        return None
    return encode if same else None


# A fifth of an audit entry's cost went to JSONEncoder.encode's set-up (issue 20).
_ENCODE = _c_encoder()


def canonical_text(value: Any) -> str:
    """``value`` as canonical JSON text (sorted keys, compact, non-ASCII as is).

    Raises:
        RecordError: The value holds NaN/infinity or a non-JSON type.
    """
    try:
        if _ENCODE is None:
            return _CANONICAL.encode(value)
        return "".join(_ENCODE(value, 0))
    except (TypeError, ValueError, RecursionError) as exc:
        raise RecordError(f"value cannot be written as canonical JSON: {exc}") from None


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` to canonical JSON bytes (sorted keys, compact, UTF-8).

    Raises:
        RecordError: The value holds NaN/infinity or a non-JSON type.
    """
    return canonical_text(value).encode("utf-8")
