"""Verification of an audit chain (pure): entries and checkpoints in, a report out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from provenance._io.keys import (
    TrustPolicy,
)
from provenance.audit._chain import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    AuditProblem,
    AuditReport,
    ProblemKind,
)
from provenance.audit._checkpoint import Checkpoint
from provenance.errors import RecordError


@dataclass(frozen=True, slots=True)
class _Link:
    """What verification needs from one entry: its position and hashes."""

    seq: int
    prev_hash: str
    entry_hash: str
    intact: bool
    note: str | None = None
    checkpoint_ref: tuple[int, str] | None = None


def _link_of(entry: AuditEntry) -> _Link:
    try:
        intact = entry.computed_hash() == entry.entry_hash
    except RecordError:
        intact = False
    return _Link(entry.seq, entry.prev_hash, entry.entry_hash, intact, None, _checkpoint_ref(entry))


def _checkpoint_ref(entry: AuditEntry) -> tuple[int, str] | None:
    if entry.event is not AuditEvent.CHECKPOINT:
        return None
    seq, digest = entry.payload.get("checkpoint_seq"), entry.payload.get("checkpoint_hash")
    if isinstance(seq, int) and isinstance(digest, str):
        return seq, digest
    return None


class _Walker:
    """One pass over the links in stored order; memory bounded by the anomalies.

    The chain is followed in seq order. What does not fit is classified:

    1. An entry whose content does not match its hash: EDITED.
    2. A seq lower than one already seen: REORDERED when its place was a gap,
       otherwise INSERTED (a second entry with that seq).
    3. A seq gap: DELETED, unless the missing entries turn up later (REORDERED).
    4. A broken link between intact neighbours ``a`` and ``b``: if ``b`` is the
       last entry it was appended outside the chain (INSERTED); if the entry after
       ``b`` links to ``b``, then ``a`` was edited and re-hashed (EDITED at
       ``a``); if it does not either, ``b`` links to neither side (EDITED at ``b``).
    """

    def __init__(self, watched: Iterable[int], stored_refs: set[tuple[int, str]] | None) -> None:
        self.problems: list[AuditProblem] = []
        self.count = 0
        self.tail: _Link | None = None
        self.tail_expected_prev: str | None = GENESIS_HASH
        self.tail_linked = True
        self.gaps: list[tuple[int, int, int]] = []  # (first missing, last missing, seq after)
        self.pending_break: tuple[int, int] | None = None  # (a, b): b does not link to a
        self.watched = set(watched)
        self.hash_at: dict[int, str] = {}
        self.stored_refs = stored_refs

    def _problem(self, seq: int, kind: ProblemKind, detail: str) -> None:
        self.problems.append(AuditProblem(seq, kind, detail))

    def add(self, link: _Link) -> None:
        self.count += 1
        if not link.intact:
            self._problem(
                link.seq,
                ProblemKind.EDITED,
                link.note or f"entry {link.seq} was edited: its content no longer matches its hash",
            )
        elif link.checkpoint_ref is not None and self.stored_refs is not None:
            ref_seq, ref_hash = link.checkpoint_ref
            if (ref_seq, ref_hash) not in self.stored_refs:
                self._problem(
                    ref_seq,
                    ProblemKind.DELETED,
                    f"the checkpoint of entry {ref_seq} (recorded by entry {link.seq}) is "
                    "missing from the checkpoints table",
                )
        tail = self.tail
        if tail is not None and link.seq <= tail.seq:
            self._out_of_order(link, tail)
            return
        expected = 1 if tail is None else tail.seq + 1
        if link.seq > expected:
            # A gap: report at the end unless the missing entries turn up later.
            self.gaps.append((expected, link.seq - 1, link.seq))
            self._resolve_break(followed_by_link=False)
            self._accept(link, expected_prev=None, linked=False)
            return
        expected_prev = GENESIS_HASH if tail is None else tail.entry_hash
        linked = link.prev_hash == expected_prev
        if linked:
            self._resolve_break(followed_by_link=True)
        elif link.intact and (tail is None or tail.intact):
            # (An edited neighbour already explains a broken link.)
            if self.pending_break is not None and self.pending_break[1] == expected - 1:
                a = self.pending_break[0]
                self.pending_break = None
                self._problem(
                    expected - 1,
                    ProblemKind.EDITED,
                    f"entry {expected - 1} links to neither entry {a} nor entry {link.seq}: it "
                    "was edited and re-hashed, or forged in place of the original",
                )
            else:
                self._resolve_break(followed_by_link=False)
                self.pending_break = (expected - 1, link.seq)
        else:
            self._resolve_break(followed_by_link=False)
        self._accept(link, expected_prev=expected_prev, linked=linked)

    def _accept(self, link: _Link, *, expected_prev: str | None, linked: bool) -> None:
        self.tail = link
        self.tail_expected_prev = expected_prev
        self.tail_linked = linked
        if link.seq in self.watched:
            self.hash_at[link.seq] = link.entry_hash

    def _out_of_order(self, link: _Link, tail: _Link) -> None:
        if link.seq == tail.seq:
            if not self.tail_linked and link.prev_hash == self.tail_expected_prev:
                # The entry accepted first was the forgery; this one is the original.
                self._problem(
                    link.seq,
                    ProblemKind.INSERTED,
                    f"an entry with seq {link.seq} that does not link to entry "
                    f"{link.seq - 1} was inserted before the original",
                )
                if self.pending_break is not None and self.pending_break[1] == link.seq:
                    self.pending_break = None
                self._accept(link, expected_prev=self.tail_expected_prev, linked=True)
                return
            self._problem(
                link.seq,
                ProblemKind.INSERTED,
                f"a second entry with seq {link.seq} that does not belong to the chain",
            )
            return
        for index, (first, last, after) in enumerate(self.gaps):
            if first <= link.seq <= last:
                del self.gaps[index]
                if first < link.seq:
                    self.gaps.append((first, link.seq - 1, link.seq))
                if link.seq < last:
                    self.gaps.append((link.seq + 1, last, after))
                self._problem(
                    link.seq,
                    ProblemKind.REORDERED,
                    f"entry {link.seq} is stored after entry {tail.seq}, out of sequence",
                )
                if link.seq in self.watched:
                    self.hash_at[link.seq] = link.entry_hash
                return
        self._problem(
            link.seq,
            ProblemKind.INSERTED,
            f"a second entry with seq {link.seq}, stored after entry {tail.seq}",
        )

    def _resolve_break(self, *, followed_by_link: bool) -> None:
        if self.pending_break is None:
            return
        a, b = self.pending_break
        self.pending_break = None
        if followed_by_link:
            self._problem(
                a,
                ProblemKind.EDITED,
                f"entry {a} was edited and re-hashed: entry {b} still links to its original hash",
            )
        else:
            self._problem(
                b,
                ProblemKind.INSERTED,
                f"entry {b} does not link to entry {a}: it was added outside the chain (or "
                f"entry {a} was edited and re-hashed)",
            )

    def finish(self) -> None:
        self._resolve_break(followed_by_link=False)
        for first, last, after in sorted(self.gaps):
            what = f"entry {first} is" if first == last else f"entries {first}-{last} are"
            before = f"entry {first - 1}" if first > 1 else "the start of the log"
            self._problem(
                first, ProblemKind.DELETED, f"{what} missing between {before} and entry {after}"
            )

    def missing(self, seq: int) -> bool:
        return any(first <= seq <= last for first, last, _ in self.gaps)


# The verification steps in order (pin, checkpoints, walk, compare, notes), read top down.
def _verify_links(
    links: Iterable[_Link],
    *,
    checkpoints: Iterable[Checkpoint] | None,
    against: Checkpoint | None,
    trust: TrustPolicy | None,
    pin: str | None = None,
    witnessed: Sequence[Checkpoint] = (),
) -> AuditReport:
    stored = sorted(checkpoints, key=lambda c: c.seq) if checkpoints is not None else None
    given = [against] if against is not None else []
    witnessed = sorted(witnessed, key=lambda c: c.seq)
    pin, external = _log_pin(pin, outside=[*witnessed, *given], stored=stored or [])
    bad: list[AuditProblem] = []
    good: list[tuple[Checkpoint, bool]] = []  # (checkpoint, kept outside the database)
    sources = [(cp, False, "") for cp in stored or []]
    sources += [(cp, True, "given ") for cp in given]
    sources += [(cp, True, "witnessed ") for cp in witnessed]
    for cp, outside, label in sources:
        # A checkpoint an operator hands over (an export) may be unsigned: its value
        # is where it was kept. Stored and witnessed ones must carry the log's key.
        cp_pin = pin if (not label.startswith("given") or cp.is_signed) else None
        reason = cp.signature_problem(trust=trust, pin=cp_pin)
        if reason is None:
            good.append((cp, outside))
        else:
            bad.append(AuditProblem(cp.seq, ProblemKind.BAD_CHECKPOINT_SIGNATURE, label + reason))
    refs = {(cp.seq, cp.entry_hash) for cp in stored} if stored is not None else None
    walker = _Walker((cp.seq for cp, _ in good), refs)
    for link in links:
        walker.add(link)
    walker.finish()
    problems = walker.problems + bad
    last_seq = walker.tail.seq if walker.tail is not None else 0
    last_hash = walker.tail.entry_hash if walker.tail is not None else GENESIS_HASH
    for cp, outside in good:
        problems.extend(_compare(cp, walker, last_seq, outside=outside))
    problems = _unique(problems)
    problems.sort(key=lambda p: p.seq)
    signed_good = [cp for cp, _ in good if cp.is_signed]
    notes: list[str] = []
    verified = bool(signed_good) and (external or trust is not None)
    if not signed_good:
        notes.append(
            "unverified: no signed checkpoint vouches for this log yet (writers with a key "
            "take one every checkpoint_every entries; 'provenance audit checkpoint' takes "
            "one now); whoever can write the database could have rewritten it consistently"
        )
    elif not verified:
        notes.append(
            "unverified: checkpoint signatures were checked only against the certificates "
            "they carry; give the log's key (--keys), --trust-anchors or a witness to pin them"
        )
    covered = max((cp.seq for cp in signed_good), default=0)
    tail = walker.tail
    if tail is not None and tail.seq == covered + 1 and tail.checkpoint_ref is not None:
        covered += 1  # only the entry that logged the checkpoint comes after it
    if verified and covered < last_seq:
        notes.append(
            f"entries {covered + 1}-{last_seq} come after the latest signed checkpoint: "
            "nothing outside the database vouches for them yet"
        )
    return AuditReport(
        ok=not problems,
        entries_checked=walker.count,
        last_seq=last_seq,
        last_hash=last_hash,
        problems=tuple(problems),
        checkpoints_checked=len(stored or []) + len(given) + len(witnessed),
        verified=verified and not problems,
        notes=tuple(notes),
    )


def _log_pin(
    pin: str | None, *, outside: Sequence[Checkpoint], stored: Sequence[Checkpoint]
) -> tuple[str | None, bool]:
    """The log's key and whether something outside the database named it.

    The key given (or the first signed checkpoint kept outside the database, a
    witness's or an export's), else the first signed checkpoint stored in it.
    """
    if pin is not None:
        return pin, True
    for cp in outside:
        if cp.is_signed and (fp := cp.signer_fingerprint()) is not None:
            return fp, True
    for cp in stored:
        if cp.is_signed and (fp := cp.signer_fingerprint()) is not None:
            return fp, False
    return None, False


def _unique(problems: list[AuditProblem]) -> list[AuditProblem]:
    """Problems without repeats (a checkpoint stored and witnessed is compared twice)."""
    seen: set[tuple[int, ProblemKind, str]] = set()
    out = []
    for p in problems:
        key = (p.seq, p.kind, p.detail)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _compare(
    cp: Checkpoint, walker: _Walker, last_seq: int, *, outside: bool
) -> list[AuditProblem]:
    where = "the checkpoint given" if outside else "the stored checkpoint"
    if cp.seq > last_seq:
        return [
            AuditProblem(
                last_seq + 1,
                ProblemKind.TRUNCATED,
                f"the log ends at entry {last_seq} but {where} covers entry {cp.seq} "
                f"(taken {cp.at}): entries {last_seq + 1}-{cp.seq} at least were removed",
            )
        ]
    if walker.missing(cp.seq) or cp.seq not in walker.hash_at:
        return []  # already reported as DELETED
    if walker.hash_at[cp.seq] == cp.entry_hash:
        return []
    if outside:
        return [
            AuditProblem(
                cp.seq,
                ProblemKind.ROLLED_BACK,
                f"entry {cp.seq} differs from {where} (taken {cp.at}): the log was "
                "restored from an older copy or rewritten since",
            )
        ]
    return [
        AuditProblem(
            cp.seq,
            ProblemKind.EDITED,
            f"entry {cp.seq} differs from {where} taken {cp.at}: it was edited and re-hashed",
        )
    ]


def verify_chain(
    entries: Iterable[AuditEntry],
    *,
    checkpoints: Iterable[Checkpoint] | None = None,
    against: Checkpoint | None = None,
    trust: TrustPolicy | None = None,
    pin: str | None = None,
    witnessed: Sequence[Checkpoint] = (),
) -> AuditReport:
    """Check a hash chain, in the order given, and the checkpoints that cover it.

    Steps:

    1. Each checkpoint's signature (and, with ``trust``, its signer's chain to
       an anchor); a bad one is BAD_CHECKPOINT_SIGNATURE and is not used further.
    2. Each entry's own hash (EDITED), its place in the sequence (REORDERED,
       INSERTED, DELETED) and its link to the previous entry (see ``_Walker``).
    3. Each stored checkpoint: the log must reach its seq (else TRUNCATED) with
       the same hash there (else EDITED). With ``checkpoints`` given, every
       CHECKPOINT entry must have its row (else DELETED).
    4. ``against`` and ``witnessed``, checkpoints kept outside the database:
       the log must reach each (else TRUNCATED) with the same hash (else
       ROLLED_BACK).

    Signed checkpoints must all carry the log's key: ``pin`` when given, else
    the first signed checkpoint kept outside the database (witnessed or
    given), else the first one stored. The report is ``verified`` only when
    that key came from outside the database (``pin``, a witness, a given
    checkpoint) or ``trust`` checked the signers.

    Args:
        entries: The entries as stored.
        checkpoints: The stored checkpoints, or None to skip steps 1 and 3 for them.
        against: A checkpoint kept elsewhere (for example, from an export).
        trust: Require checkpoints signed by a certificate chaining to these anchors.
        pin: The log's key (:func:`provenance._io.keys.key_fingerprint`), known from outside.
        witnessed: The checkpoints a witness holds (see :class:`FileWitness`).

    Returns:
        The report; ``ok`` is true when no problem was found.
    """
    return _verify_links(
        (_link_of(e) for e in entries),
        checkpoints=checkpoints,
        against=against,
        trust=trust,
        pin=pin,
        witnessed=witnessed,
    )
