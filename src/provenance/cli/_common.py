"""What commands resolve from their options: the inventory, keys, trust anchors, PII policy.

Each helper turns an option (or its environment variable, or the working folder's
default) into the library object a verb takes, and says on stderr when it falls back:
no inventory found, a key that is not the audit log's own, a witness that could not
be written. A problem the user must fix is one line and exit 2 (:func:`fail`).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.cli._options import DEFAULT_KEY_DIR, PASSPHRASE_ENV
from provenance.cli._output import err, fail, one_line, warn
from provenance.errors import (
    InsecureKeyFileWarning,
    KeyConfigError,
    ProvenanceError,
    SchemaVersionError,
)

if TYPE_CHECKING:
    from provenance._core.pii import PiiAction, PiiPolicy
    from provenance._io.keys import SigningKey, TrustPolicy
    from provenance.inventory import Inventory

# The library is imported inside the helpers, when a command runs (issue 20):
# ``provenance sign --workers 2`` starts its worker pool's fork server first, so
# that the server's imports run beside this process's rather than after them.

BUSY_TIMEOUT_ENV = "PROVENANCE_BUSY_TIMEOUT_S"
"""How long a command waits for another process's inventory write lock (default 30 s)."""

PII_HASH_KEY_ENV = "PROVENANCE_PII_HASH_KEY"


def busy_timeout_s() -> float:
    """How long a writer waits for another (``$PROVENANCE_BUSY_TIMEOUT_S``, default 30 s)."""
    text = os.environ.get(BUSY_TIMEOUT_ENV, "")
    if not text:
        return 30.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        fail(f"{BUSY_TIMEOUT_ENV}={text!r}: give a number of seconds (0 or more)")
    return value


def open_inventory(
    path: Path | None,
    *,
    create: bool,
    read_only: bool = False,
    checkpoint_key: SigningKey | None = None,
) -> Inventory:
    """The inventory by the discovery rule (provenance._io.discovery); a new one is made in cwd.

    A signing writer passes its key so checkpoints follow the schedule.
    """
    from provenance._io.discovery import find_inventory
    from provenance.inventory import Inventory

    try:
        target = find_inventory(path).path
        return Inventory(
            target,
            create=create,
            read_only=read_only,
            checkpoint_key=checkpoint_key,
            busy_timeout_s=busy_timeout_s(),
        )
    except ProvenanceError as exc:
        message = str(exc)
        if "pass create=True" in message:
            # The library's hint names a Python argument; a command-line user needs flags.
            message = (
                f"{target}: no inventory here; give --inventory PATH or set "
                "PROVENANCE_INVENTORY (commands that sign create it)"
            )
        fail(message)


def inventory_for_writing(
    path: Path | None, *, skip: bool, checkpoint_key: SigningKey | None
) -> Inventory | None:
    """The inventory a signing command records into (made when missing); None with ``skip``."""
    if skip:
        return None
    return open_inventory(path, create=True, checkpoint_key=checkpoint_key)


def find_existing(path: Path | None) -> tuple[Inventory | None, str | None]:
    """The inventory to read, if any, and otherwise the warning that says so.

    ``--inventory`` must exist. A ``$PROVENANCE_INVENTORY`` or config entry that
    names a missing file, and finding nothing at all, are not errors: the
    command runs without an inventory, and says so (stderr and ``--json``).
    """
    from provenance._io.discovery import InventorySource, find_inventory

    try:
        found = find_inventory(path)
    except ProvenanceError as exc:
        fail(str(exc))
    if found.source is not InventorySource.FLAG and not found.exists:
        if found.source is InventorySource.NONE:
            why = (
                "no inventory found (no --inventory, no $PROVENANCE_INVENTORY, no "
                f"provenance.toml or .provenance/inventory.sqlite from {Path.cwd()} up)"
            )
        else:
            why = f"no inventory at {found.path} (named by {found.origin}): no such file"
        return None, why + "; stripped and resized copies cannot be recognised"
    # Imported only now: without an inventory a command need not load it (numpy, Pillow).
    from provenance.inventory import Inventory

    target = found.path
    try:
        return Inventory(target, create=False, read_only=True), None
    except SchemaVersionError as exc:
        if exc.found > exc.supported:
            fail(str(exc))
    except ProvenanceError as exc:
        fail(str(exc))
    # An older schema: migrate it once (a writable open does, in one transaction).
    open_inventory(target, create=False).close()
    return open_inventory(target, create=False, read_only=True), None


def existing_inventory(path: Path | None) -> Inventory | None:
    """The inventory to read, if any; without one, say so once on stderr."""
    inventory, warning = find_existing(path)
    warn(warning)
    return inventory


@contextlib.contextmanager
def closing(inventory: Inventory | None) -> Iterator[Inventory | None]:
    """Yield ``inventory`` (or None) and close it when the block ends, however it ends."""
    try:
        yield inventory
    finally:
        if inventory is not None:
            warn_witness(inventory)
            inventory.close()


def warn_witness(inventory: Inventory) -> None:
    """Say so when a checkpoint could not be written to the audit witness (it is retried)."""
    if inventory.audit.witness_error is not None:
        err.line(f"provenance: warning: {one_line(inventory.audit.witness_error)}")


def verdict_row(
    row: dict[str, Any], inventory_name: str | None, warning: str | None
) -> dict[str, Any]:
    """A verify, scan or trace row: ``status`` and the inventory it was checked against.

    ``status`` is the verdict (``verdict`` is kept as it was); ``inventory`` is the
    database path or ``None``, and ``warnings`` says why there was none.
    """
    from provenance._core.types import Status

    verdict = row.get("verdict")
    row.setdefault("status", verdict if isinstance(verdict, str) else Status.ERROR.value)
    row.setdefault("error", None)
    row["inventory"] = inventory_name
    row["warnings"] = [] if warning is None else [warning]
    return row


def trust_policy(trust_anchors: Path | None) -> TrustPolicy:
    """The anchors given with --trust-anchors, or none (valid_untrusted at best)."""
    from provenance._io.keys import TrustPolicy

    try:
        return (
            TrustPolicy.from_pem(trust_anchors)
            if trust_anchors is not None
            else TrustPolicy.no_anchors()
        )
    except ProvenanceError as exc:
        fail(str(exc))


def checkpoint_key(keys_dir: Path | None, inventory: Inventory) -> SigningKey | None:
    """The key that signs an export's or report's audit checkpoint, if any.

    It is also set as the inventory's checkpoint key (the open ``inventory``'s log
    decides whether the working folder's keys are its own).

    ``--keys`` when given. Otherwise ``.provenance/keys`` of the working folder, but only
    when it is the log's own key (or the log has none yet): a log is pinned to one key,
    and keys that happen to lie in the folder a command runs from are not a reason to
    sign someone else's log (the checkpoint is then unsigned, and we say so).
    """
    from provenance._io.keys import key_fingerprint

    key: SigningKey | None = None
    if keys_dir is not None:
        key = load_key(None, None, keys_dir)
    elif (DEFAULT_KEY_DIR / "chain.pem").exists():
        key = load_key(None, None, DEFAULT_KEY_DIR)
        log_key = inventory.audit.log_key()
        if log_key is not None and log_key != key_fingerprint(key.leaf):
            warn(
                f"{DEFAULT_KEY_DIR}: not this log's key ({log_key[:16]}); the audit checkpoint "
                "is unsigned (pass --keys with the log's keys to sign it)"
            )
            key = None
    inventory.audit.checkpoint_key = key
    return key


def _passphrase(env_name: str | None, file: Path | None) -> bytes | None:
    """An encrypted key's passphrase: from a file (or descriptor), or an environment variable."""
    if env_name is not None and file is not None:
        fail("--key-passphrase-env and --key-passphrase-file exclude each other")
    if file is not None:
        try:
            text = file.read_bytes()
        except OSError as exc:
            fail(f"{file}: cannot read the key passphrase: {exc.strerror}")
        line = text.split(b"\n", 1)[0].rstrip(b"\r")
        if not line:
            fail(f"{file}: the key passphrase file is empty")
        return line
    if env_name is not None:
        value = os.environ.get(env_name)
        if not value:
            fail(f"--key-passphrase-env: ${env_name} is not set (or empty)")
        return value.encode("utf-8")
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode("utf-8") if value else None


def load_key(
    cert: Path | None,
    key: Path | None,
    keys_dir: Path,
    *,
    passphrase_env: str | None = None,
    passphrase_file: Path | None = None,
    signer: str | None = None,
) -> SigningKey:
    """The signing key of --cert/--key (default: --keys DIR), or of a --signer callback."""
    from provenance._io.keys import SigningKey

    chain = cert or keys_dir / "chain.pem"
    private = key or keys_dir / "signer.key"
    if signer is not None:
        if key is not None or passphrase_env is not None or passphrase_file is not None:
            fail("--signer signs without a key file: drop --key and --key-passphrase-*")
        try:
            chain_pem = chain.read_bytes()
        except OSError as exc:
            fail(f"{chain}: cannot read the signer's certificate chain: {exc.strerror}")
        try:
            return SigningKey.from_signer_spec(signer, chain_pem)
        except ProvenanceError as exc:
            fail(str(exc) if exc.path is not None else f"{chain}: {exc}")
    passphrase = _passphrase(passphrase_env, passphrase_file)
    if not chain.exists() and cert is None:
        fail(
            f"{chain}: no signing certificate; run 'provenance keys init {keys_dir}' for "
            "development keys, or pass --cert and --key"
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InsecureKeyFileWarning)
            loaded = SigningKey.from_pem_files(chain, private, passphrase=passphrase)
    except ProvenanceError as exc:
        fail(str(exc))
    for warning in caught:
        warn(str(warning.message))
    return loaded


def read_names(names: Path | None) -> tuple[str, ...]:
    """The names or customer ids of --names, one per line."""
    if names is None:
        return ()
    try:
        text = names.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{names}: cannot read names: {exc}")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def pii_policy(action: PiiAction, names: Path | None) -> PiiPolicy:
    """The personal-data policy of --pii and --names (the hash key from the environment)."""
    from provenance._core.pii import MIN_HASH_KEY_BYTES, PiiAction, PiiPolicy

    hash_key = None
    if action is PiiAction.HASH:
        hash_key = os.environ.get(PII_HASH_KEY_ENV, "").encode("utf-8")
    try:
        return PiiPolicy(default=action, names=read_names(names), hash_key=hash_key)
    except KeyConfigError:
        # PiiPolicy holds the rule on hash keys; say it in terms of the flag and variable.
        fail(
            f"--pii hash needs a secret of at least {MIN_HASH_KEY_BYTES} bytes "
            f"in ${PII_HASH_KEY_ENV}"
        )
    except ProvenanceError as exc:
        fail(str(exc))
