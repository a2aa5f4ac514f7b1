"""Steps 1-2: the file's format, metadata blocks and hashes, and the verdicts that end there.

A file cut short whose manifest or signed XMP can still be read is ``tampered``
(:func:`_truncated`); a layout c2pa reads and our parsers do not (BigTIFF) gets
the C2PA manifest's verdict alone (:func:`_c2pa_only`); two XMP packets that
contradict each other are both set aside and the rest is checked. Everything
else goes on to step 3 as a :class:`Subject`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provenance._core import containers, xmp
from provenance._core.containers.rendering import Finding, rendering_findings
from provenance._core.hashing import hash_ranges, sha256_hex
from provenance._core.lineage import lineage_from_store
from provenance._core.statement import Statement, parse_statement
from provenance._core.types import Evidence, EvidenceSource, Status, Verdict
from provenance._io.c2pa import C2paReport, read_c2pa
from provenance._io.keys import TrustPolicy
from provenance.errors import ContainerError, ProvenanceError, UnsupportedFormat
from provenance.verify._c2pa import _c2pa_evidence, _c2pa_trusted, _statement_from_c2pa
from provenance.verify._codes import TRUNCATED, XMP_CONFLICTING, XMP_NOT_CHECKED
from provenance.verify._identity import _c2pa_signer


@dataclass(frozen=True, slots=True)
class Subject:
    """What steps 1-2 found in a file that goes on to be checked.

    Attributes:
        format: The image format.
        info: The metadata blocks and essence ranges.
        sha256: The file's SHA-256.
        essence: The essence hash (the coded image data only).
        rendering: Blocks outside the essence that change the rendering, trailing
            data and bad ancillary CRCs: with them, an equal essence does not
            show the image was left alone.
        report: c2pa's report when step 1 has read it already (``c2pa_read``).
        c2pa_read: Whether ``report`` is c2pa's answer (else step 3 reads it).
        conflict: The evidence that contradicting XMP packets were set aside.
        statement: The signed statement in ``report``, when step 1 has parsed it
            already (step 3 then does not parse it again).
        data: The whole file as ``bytes`` when steps 1-2 needed it so (None for a
            JPEG c2pa trusts, read from a view of the file: nothing else needs it).
    """

    format: containers.ImageFormat
    info: containers.ContainerInfo
    sha256: str
    essence: str
    rendering: tuple[Finding, ...]
    report: C2paReport | None
    c2pa_read: bool
    conflict: Evidence | None
    statement: Statement | None = None
    data: bytes | None = None


def read_subject(data: bytes | memoryview, *, name: str, policy: TrustPolicy) -> Subject | Verdict:
    """Format, blocks and hashes; or the verdict already, for a file cut short or unparsed.

    ``data`` may be a view of a reused buffer (``_io.reading.read_input_view``): a
    JPEG that c2pa trusts is then checked without a copy of the whole file, any
    other file is copied once into ``bytes``. Nothing returned refers to ``data``.

    Raises:
        ProvenanceError: The file cannot be read at all.
    """
    sha = sha256_hex(data)
    report: C2paReport | None = None
    c2pa_read = False
    conflict: Evidence | None = None
    statement: Statement | None = None
    whole = data if isinstance(data, bytes) else None
    try:
        head, statement, report, c2pa_read = _trusted_read(data, policy)
        if head is not None and statement is not None:
            fmt, info, essence = containers.ImageFormat.JPEG, head.info, statement.essence_sha256
            subject = head.data  # the bytes ``info`` describes: the metadata before the scan
        else:
            subject = whole = as_bytes(data)
            fmt = containers.detect_format(subject)
            info = containers.inspect(subject)
            essence = hash_ranges(subject, info.essence_ranges)
    except UnsupportedFormat as exc:
        # A layout c2pa reads and our parsers do not (BigTIFF): only C2PA is checked.
        return _c2pa_only(whole or as_bytes(data), exc, name=name, policy=policy)
    except ContainerError as exc:
        whole = whole or as_bytes(data)
        if exc.message.startswith("truncated"):
            return _truncated(whole, exc, name=name, policy=policy)
        if not exc.message.startswith("several XMP packets"):
            raise
        # Two XMP packets contradict each other: neither is used, the rest is
        # checked (the C2PA binding covers the XMP, so a signed file with an
        # added packet shows as a metadata change).
        fmt = containers.detect_format(whole)
        subject = containers.strip(whole, frozenset({containers.BlockKind.XMP}))
        info = containers.inspect(subject)
        essence = hash_ranges(subject, info.essence_ranges)
        conflict = Evidence(
            EvidenceSource.XMP,
            Status.NO_PROVENANCE,
            f"{exc.message}: conflicting XMP, none of it used",
            (XMP_CONFLICTING,),
        )
    rendering = rendering_findings(subject, info)
    return Subject(
        fmt, info, sha, essence, rendering, report, c2pa_read, conflict, statement, whole
    )


def as_bytes(data: bytes | memoryview) -> bytes:
    """``data`` as bytes: a view of a whole ``bytes`` object gives that object, uncopied."""
    if isinstance(data, bytes):
        return data
    if isinstance(data.obj, bytes) and len(data.obj) == len(data):
        return data.obj
    return data.tobytes()


JPEG_MAGIC = b"\xff\xd8"
"""How a JPEG starts (SOI): ``containers.detect_format``'s test for one."""

# C2PA 2.x, A.3.1: the store's JUMBF description box, type "jumd", UUID "c2pa...".
_C2PA_DESCRIPTION = re.compile(rb"jumdc2pa")


def c2pa_jpeg_head(head: memoryview) -> bool:
    """Whether a file's first bytes look like a JPEG with a C2PA store in them.

    Only a choice of how to read a file (``verify``: such a JPEG is checked in
    place when c2pa trusts it, any other needs its bytes whole); the checks
    themselves do not depend on it.
    """
    return head[:2] == JPEG_MAGIC and _C2PA_DESCRIPTION.search(head) is not None


@dataclass(frozen=True, slots=True)
class _Head:
    """The metadata before a JPEG's first scan: the bytes read and what they hold."""

    data: bytes
    info: containers.ContainerInfo


# The first copy is below glibc's default mmap threshold (128 KiB), so it reuses the
# heap; the next one holds any metadata a JPEG's 64 KB segments leave room for
# before the scan but the largest ICC profiles and MPF previews.
_HEAD_BYTES = (64 * 1024, 1024 * 1024)


def _head(data: bytes | memoryview) -> _Head:
    """``inspect(data, essence=False)``, copying no more of a view than the metadata needs.

    A JPEG's metadata segments come before its first scan, and the first
    ``_HEAD_BYTES[0]`` usually hold them all (a signed file's XMP, EXIF and C2PA
    store take a few KB to tens of KB). When they run past a prefix, a longer one
    is read and then the whole file, so every error is the whole file's.
    """
    if isinstance(data, memoryview):
        for size in _HEAD_BYTES:
            if size >= len(data):
                break
            head = data[:size].tobytes()
            try:
                return _Head(head, containers.inspect(head, essence=False))
            except ContainerError as exc:
                if not exc.message.startswith("truncated"):
                    raise
    whole = as_bytes(data)
    return _Head(whole, containers.inspect(whole, essence=False))


def _trusted_read(
    data: bytes | memoryview, policy: TrustPolicy
) -> tuple[_Head | None, Statement | None, C2paReport | None, bool]:
    """For a JPEG with a C2PA store, c2pa first: skip a pass it has just made.

    When c2pa trusts the store with no failure code, its hard binding has just
    covered every byte outside the store, so the coded image data is the data
    the signer hashed and the essence is the one the signed statement names:
    the entropy-coded data is then neither scanned for markers nor hashed again
    (measured on 0.5-1.4 MB JPEGs: 1.2 ms of 4.5 ms per file). Returns
    ``(head, statement, report, read)``: head and statement None when the file is
    to be inspected and hashed as usual, ``read`` whether ``report`` is c2pa's
    answer (any failure reading it leaves the usual order, and its errors, alone).
    The statement is the one in the store, parsed once here for step 3 too.
    """
    if data[:2] != JPEG_MAGIC:
        return None, None, None, False
    head = _head(data)
    if not head.info.has_c2pa:
        return None, None, None, False
    try:
        report = _read_with_store(data, head, policy)
    except ProvenanceError:
        return None, None, None, False
    if report is None or not _c2pa_trusted(report):
        return None, None, report, True
    statement = _statement_from_c2pa(report)
    if statement is None:
        return None, None, report, True
    return head, statement, report, True


# The one failure that does not depend on where c2pa got the store (the signer's trust):
# a report with no other is kept, any other is read again.
_TRUST_ONLY = frozenset({"signingCredential.untrusted"})


def _read_with_store(
    data: bytes | memoryview, head: _Head, policy: TrustPolicy
) -> C2paReport | None:
    """c2pa's report, handing it the store found in the head when it is laid out plainly.

    c2pa then reads the file twice instead of three times (0.1-0.35 ms less for a
    1-1.6 MB JPEG). Its hard binding, checked either way, covers every byte outside the
    store, and a plain layout is one c2pa-rs reassembles alike, so the report is
    the same; any other report (an error, a failure but the signer's trust) is
    read again the usual way, so a damaged file's report is c2pa's own.
    """
    mime = containers.ImageFormat.JPEG.mime
    store = containers.jpeg.c2pa_store(head.data, head.info)
    if store is not None:
        report = read_c2pa(data, mime, policy, store=store)
        if (
            report is not None
            and report.error is None
            and _TRUST_ONLY.issuperset(report.failure_codes)
        ):
            return report
    return read_c2pa(data, mime, policy)


def _truncated(
    data: bytes, truncated: ContainerError, *, name: str, policy: TrustPolicy
) -> Verdict:
    """``tampered`` for a file cut short whose C2PA manifest or signed XMP can still be read.

    The container cannot be walked to its end, so nothing is hashed or trusted:
    what can be read shows the file was signed, and it is no longer what was
    signed. Raises ``truncated`` when neither can be read: nothing was checked.
    """
    mime = containers.c2pa_mime(data)
    try:
        report = read_c2pa(data, mime, policy) if mime is not None else None
    except ProvenanceError:
        report = None
    readable = report is not None and report.error is None
    statement = _statement_from_c2pa(report) if report is not None and readable else None
    # c2pa may refuse the whole cut-short container ("asset could not be parsed");
    # the store's JUMBF description box (type jumd, UUID starting "c2pa") still shows.
    manifest = readable or b"jumdc2pa" in data
    prov = _xmp_in_truncated(data)
    if prov is not None and statement is None:
        statement = parse_statement(prov.statement)
    if not manifest and prov is None:
        raise truncated
    seen = [what for what, there in (("C2PA manifest", manifest), ("signed XMP", prov)) if there]
    evidence = Evidence(
        EvidenceSource.CONTAINER,
        Status.TAMPERED,
        f"{truncated.message}; the file was signed ({' and '.join(seen)} readable) "
        "and has been cut short since",
        (TRUNCATED,),
    )
    c2pa_codes = tuple(report.failure_codes) if report is not None and readable else ()
    return Verdict(
        path=name,
        status=Status.TAMPERED,
        failure_codes=tuple(sorted({TRUNCATED, *c2pa_codes})),
        active_manifest=report.active_manifest if report is not None and readable else None,
        record=statement.record if statement is not None else None,
        asset_id=statement.asset_id if statement is not None else None,
        sha256_hex=sha256_hex(data),
        evidence=(evidence,),
    )


def _xmp_in_truncated(data: bytes) -> xmp.XmpProvenance | None:
    """Our provenance in the first whole XMP packet of a file that cannot be walked."""
    start = data.find(b"<x:xmpmeta")
    end = data.find(b"</x:xmpmeta>", start)
    if start < 0 or end <= start:
        return None
    try:
        return xmp.parse_packet(data[start : end + len(b"</x:xmpmeta>")])
    except ProvenanceError:
        return None


def _c2pa_only(
    data: bytes, unparsed: UnsupportedFormat, *, name: str, policy: TrustPolicy
) -> Verdict:
    """The verdict of the C2PA manifest alone, saying the XMP was not checked.

    Raises ``unparsed`` when c2pa does not read the format either, or finds no
    manifest: then nothing was checked at all.
    """
    mime = containers.c2pa_mime(data)
    report = read_c2pa(data, mime, policy) if mime is not None else None
    c2pa = _c2pa_evidence(report, policy)
    if report is None or c2pa is None:
        raise unparsed
    not_checked = Evidence(
        EvidenceSource.XMP,
        Status.NO_PROVENANCE,
        f"XMP not checked ({unparsed.message}); only the C2PA manifest was checked",
        (XMP_NOT_CHECKED,),
    )
    readable = report.error is None
    statement = _statement_from_c2pa(report) if readable else None
    return Verdict(
        path=name,
        status=c2pa.status,
        failure_codes=tuple(sorted({*c2pa.codes, XMP_NOT_CHECKED})),
        active_manifest=report.active_manifest if readable else None,
        record=statement.record if statement is not None else None,
        signer=_c2pa_signer(report) if readable else None,
        asset_id=statement.asset_id if statement is not None else None,
        sha256_hex=sha256_hex(data),
        evidence=(c2pa, not_checked),
        lineage=lineage_from_store(report.store) if readable else (),
    )
