"""Witnesses: checkpoints kept outside the database (file, HTTP, syslog, several)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from provenance._core.record import canonical_json
from provenance.audit._checkpoint import Checkpoint
from provenance.errors import AuditError

WITNESS_ENV_VAR = "PROVENANCE_AUDIT_WITNESS"
"""Environment variable naming the witness (a file, a folder, or an http(s) URL)."""
WITNESS_FILE_NAME = "audit-witness.jsonl"
"""The file a folder witness appends to."""
_WITNESS_FORMAT = "provenance.audit.witness"


@dataclass(frozen=True, slots=True)
class WitnessRecord:
    """One checkpoint as a witness holds it.

    Attributes:
        log_id: The hash of the log's entry 1: which log the checkpoint is of.
        checkpoint: The checkpoint.
    """

    log_id: str
    checkpoint: Checkpoint

    def to_json(self) -> str:
        """One line of canonical JSON."""
        body = {
            "format": _WITNESS_FORMAT,
            "log_id": self.log_id,
            "checkpoint": self.checkpoint.to_dict(),
        }
        return canonical_json(body).decode("utf-8")


class FileWitness:
    """An append-only JSON-lines file, kept outside the database (another disk, host or mount).

    Every checkpoint the inventory stores is appended here after its
    transaction commits (one ``write`` with ``O_APPEND`` under ``flock``, then
    ``fsync``), and ``audit verify`` reads it back: a log that no longer reaches
    a witnessed checkpoint was truncated or rolled back, one with another hash
    there was rewritten. Use one witness per inventory. Its worth is that the
    people who can write the database cannot rewrite it (append-only mount,
    another account, a ``chattr +a`` file, a synced folder with history).

    Args:
        path: The file, or a folder (then :data:`WITNESS_FILE_NAME` in it).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        if target.is_dir() or str(path).endswith(("/", os.sep)):
            target = target / WITNESS_FILE_NAME
        self.path = target

    def __repr__(self) -> str:
        return f"FileWitness({os.fspath(self.path)!r})"

    @property
    def readable(self) -> bool:
        """Whether :meth:`read` can give the checkpoints back (true for a file)."""
        return True

    def append(self, record: WitnessRecord) -> None:
        """Append one record durably.

        Raises:
            OSError: The file cannot be written.
        """
        data = (record.to_json() + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[WitnessRecord]:
        """Every record, in file order (none when the file does not exist yet).

        A last line without its newline (a crash while appending) is skipped.

        Raises:
            AuditError: The file cannot be read, or a complete line is not a record.
        """
        try:
            text = self.path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditError(f"{self.path}: cannot read the audit witness: {exc}") from None
        lines = text.split("\n")
        out = []
        for number, line in enumerate(lines[:-1], 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict) or data.get("format") != _WITNESS_FORMAT:
                    raise AuditError("not a witness record")
                log_id = data.get("log_id")
                if not isinstance(log_id, str):
                    raise AuditError("no log_id")
                body = data.get("checkpoint")
                if not isinstance(body, dict):
                    raise AuditError("no checkpoint")
                out.append(WitnessRecord(log_id, Checkpoint.from_dict(body)))
            except (ValueError, RecursionError, AuditError) as exc:
                raise AuditError(
                    f"{self.path}: line {number} is not an audit witness record ({exc})"
                ) from None
        return out


class HttpWitness:
    """POST each checkpoint (the witness record's JSON) to an HTTP(S) endpoint.

    Write-only: ``audit verify`` cannot read it back, so keep a file witness
    too when verification should check the witnessed head by default.

    Args:
        url: The endpoint; it must answer 2xx.
        timeout_s: Per request.
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise AuditError(f"witness URL must be http(s): {url!r}")
        self.url = url
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"HttpWitness({self.url!r})"

    @property
    def readable(self) -> bool:
        """False: an HTTP witness is not read back."""
        return False

    def append(self, record: WitnessRecord) -> None:
        """POST one record.

        Raises:
            OSError: The endpoint could not be reached or did not answer 2xx.
        """
        # Here, not at the top: every process that opens an inventory imports
        # this module, and urllib.request brings http.client, ssl and email
        # (issue 20: a batch's start-up).
        import urllib.request

        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url,
            data=record.to_json().encode("utf-8"),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
            if not 200 <= response.status < 300:
                raise OSError(f"witness answered HTTP {response.status}")

    def read(self) -> list[WitnessRecord]:
        """Nothing: an HTTP witness is write-only here."""
        return []


class SyslogWitness:
    """Send each checkpoint to syslog (the local socket, or a remote collector over UDP).

    Write-only, like :class:`HttpWitness`: a log host that the database's writers
    cannot rewrite keeps the record; ``audit verify`` does not read it back.

    Args:
        address: A Unix socket path (default ``/dev/log``) or ``(host, port)``.
    """

    def __init__(self, address: str | tuple[str, int] = "/dev/log") -> None:
        self.address = address

    def __repr__(self) -> str:
        return f"SyslogWitness({self.address!r})"

    @property
    def readable(self) -> bool:
        """False: syslog is not read back."""
        return False

    def append(self, record: WitnessRecord) -> None:
        """Send one record (facility ``auth``, severity ``notice``, tag ``provenance-audit``).

        Raises:
            OSError: The socket cannot be reached.
        """
        priority = 4 * 8 + 5  # LOG_AUTH, LOG_NOTICE
        message = f"<{priority}>provenance-audit: {record.to_json()}".encode()
        if isinstance(self.address, tuple):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, self.address)
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message, self.address)

    def read(self) -> list[WitnessRecord]:
        """Nothing: syslog is write-only here."""
        return []


class MultiWitness:
    """Several witnesses at once (e.g. a file, read back by verify, and an HTTP endpoint).

    Args:
        witnesses: Each gets every record; verification reads the readable ones.
    """

    def __init__(self, witnesses: Sequence[FileWitness | HttpWitness | SyslogWitness]) -> None:
        self.witnesses = tuple(witnesses)

    def __repr__(self) -> str:
        return f"MultiWitness({list(self.witnesses)!r})"

    @property
    def readable(self) -> bool:
        """Whether at least one of them can be read back."""
        return any(w.readable for w in self.witnesses)

    def append(self, record: WitnessRecord) -> None:
        """Give the record to every witness, even when one fails.

        Raises:
            OSError: The first failure, after all were tried.
        """
        failure: OSError | None = None
        for witness in self.witnesses:
            try:
                witness.append(record)
            except OSError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def read(self) -> list[WitnessRecord]:
        """The records of every readable witness.

        Raises:
            AuditError: One of them cannot be read.
        """
        return [r for w in self.witnesses if w.readable for r in w.read()]


Witness = FileWitness | HttpWitness | SyslogWitness | MultiWitness


def witness_from(value: str | os.PathLike[str] | None) -> Witness | None:
    """A witness from a flag or setting; None if empty.

    ``http(s)://...`` is an :class:`HttpWitness`; ``syslog`` (``/dev/log``),
    ``syslog:///path/to/socket`` or ``syslog://host:port`` (UDP) a
    :class:`SyslogWitness`; anything else a file or folder (:class:`FileWitness`).
    Several, separated by commas, make a :class:`MultiWitness`.

    Raises:
        AuditError: A malformed syslog address.
    """
    if value is None:
        return None
    parts = [p.strip() for p in os.fspath(value).split(",") if p.strip()]
    witnesses = [_one_witness(p) for p in parts]
    if not witnesses:
        return None
    return witnesses[0] if len(witnesses) == 1 else MultiWitness(witnesses)


def _one_witness(text: str) -> FileWitness | HttpWitness | SyslogWitness:
    if text.startswith(("http://", "https://")):
        return HttpWitness(text)
    if text == "syslog":
        return SyslogWitness()
    if text.startswith("syslog://"):
        rest = text.removeprefix("syslog://")
        if rest.startswith("/"):
            return SyslogWitness(rest)
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit():
            raise AuditError(f"syslog witness must be syslog://HOST:PORT or syslog:///PATH: {text}")
        return SyslogWitness((host, int(port)))
    return FileWitness(Path(text).expanduser())


def witness_from_env() -> Witness | None:
    """The witness named by ``$PROVENANCE_AUDIT_WITNESS``, or None."""
    return witness_from(os.environ.get(WITNESS_ENV_VAR))


def read_witness(witness: Witness | None) -> tuple[list[Checkpoint], set[str], list[str]]:
    """The checkpoints a witness holds, the log ids they name, and notes on reading it."""
    witnessed: list[Checkpoint] = []
    log_ids: set[str] = set()
    notes: list[str] = []
    if witness is not None:
        if witness.readable:
            for record in witness.read():
                witnessed.append(record.checkpoint)
                log_ids.add(record.log_id)
            if not witnessed:
                notes.append(f"the witness {witness!r} holds no checkpoint yet")
        else:
            notes.append(f"the witness {witness!r} cannot be read back: not checked")
    return witnessed, log_ids, notes
