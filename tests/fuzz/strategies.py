"""Mutations of real files: edits that land on structure more often than chance would."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

_OPS = ("flip", "overwrite", "insert", "delete", "truncate", "duplicate")


@st.composite
def mutated(draw: st.DrawFn, data: bytes, hot: Sequence[int] = ()) -> bytes:
    """``data`` with one to four edits, half of them near a ``hot`` offset (a header)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not out:
            break
        if hot and draw(st.booleans()):
            at = min(max(draw(st.sampled_from(hot)) + draw(st.integers(-2, 12)), 0), len(out) - 1)
        else:
            at = draw(st.integers(0, len(out) - 1))
        op = draw(st.sampled_from(_OPS))
        if op == "flip":
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            new = draw(st.sampled_from([b"\x00", b"\xff", b"\xff\xff", b"\x7f\xff\xff\xff"]))
            out[at : at + len(new)] = new
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del out[at : at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del out[at:]
        else:
            size = draw(st.integers(1, 256))
            out[at:at] = out[at : at + size]
    return bytes(out)


@st.composite
def jpeg_mutated(draw: st.DrawFn, samples: Sequence[bytes]) -> bytes:
    """One of ``samples`` (JPEGs) with one to four edits; some write 0xFF, a marker's first byte."""
    data = bytearray(draw(st.sampled_from(samples)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "ff", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if action == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif action == "ff" and at < len(data):
            data[at] = 0xFF
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return bytes(data)
