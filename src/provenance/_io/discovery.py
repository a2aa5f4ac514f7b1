"""Where the inventory is: one rule for every command, the way git finds its repository.

In order, the first that applies wins:

1. ``--inventory PATH`` (the caller's ``flag``);
2. ``$PROVENANCE_INVENTORY``;
3. walking up from the working directory, in each folder: a ``provenance.toml``
   with an ``inventory = "..."`` key (relative to that file's folder), else a
   ``.provenance/inventory.sqlite``;
4. nothing: :attr:`InventorySource.NONE`, whose ``path`` is where a new
   inventory would be created (``<cwd>/.provenance/inventory.sqlite``).

Each of the first three may name a server instead of a file:
``postgresql://user:password@host/db``, ``mysql://...`` or ``mariadb://...``
(issue 16); :attr:`InventoryLocation.is_server` says so, and
:meth:`InventoryLocation.describe` never shows the password.

The module reads the file system (stat, one small TOML file) but never opens a
database and never prints: the CLI says what was found, or that nothing was.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from provenance._io.database import is_server_url, shown
from provenance.errors import ProvenanceError

__all__ = [
    "CONFIG_NAME",
    "ENV_VAR",
    "FOLDER_NAME",
    "InventoryLocation",
    "InventorySource",
    "find_inventory",
]

ENV_VAR = "PROVENANCE_INVENTORY"
CONFIG_NAME = "provenance.toml"
FOLDER_NAME = ".provenance"
_DATABASE = "inventory.sqlite"
# A project config is a few lines; refuse to parse anything large.
_MAX_CONFIG_BYTES = 64 * 1024


class InventorySource(enum.Enum):
    """How the inventory was found."""

    FLAG = "flag"
    """``--inventory PATH``."""
    ENV = "env"
    """``$PROVENANCE_INVENTORY``."""
    CONFIG = "config"
    """The ``inventory`` key of a ``provenance.toml`` in the folder or a parent."""
    FOLDER = "folder"
    """A ``.provenance/inventory.sqlite`` in the folder or a parent."""
    NONE = "none"
    """Nothing found; ``path`` is where a new one would be created."""


@dataclass(frozen=True, slots=True)
class InventoryLocation:
    """The inventory a command should use.

    Attributes:
        path: The database file (for :attr:`InventorySource.NONE`, the default
            place a signing command creates it).
        source: How it was found.
        origin: What named it: the config file, the folder, the variable.
    """

    path: Path
    source: InventorySource
    origin: str

    @property
    def is_server(self) -> bool:
        """Whether ``path`` is a server URL (PostgreSQL, MariaDB/MySQL) rather than a file."""
        return is_server_url(self.path)

    @property
    def exists(self) -> bool:
        """Whether the database file exists (a server is only known to exist once opened)."""
        return self.is_server or self.path.is_file()

    def describe(self) -> str:
        """One phrase for messages, e.g. ``/p/inv.sqlite (from /p/provenance.toml)``."""
        if self.source is InventorySource.NONE:
            return "none found"
        return f"{shown(self.path)} (from {self.origin})"


def find_inventory(
    flag: str | os.PathLike[str] | None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> InventoryLocation:
    """Resolve the inventory by the rule in the module docstring.

    Args:
        flag: The ``--inventory`` value, if given.
        env: The environment (default: ``os.environ``).
        cwd: The folder to start from (default: the working directory).

    Returns:
        Where the inventory is, and how that was decided. The file may not exist
        for the flag and the variable; callers decide whether that is an error.

    Raises:
        ProvenanceError: A ``provenance.toml`` on the way up is not valid TOML, or
            its ``inventory`` key is not a non-empty string (named in the message).
    """
    environ = os.environ if env is None else env
    start = (cwd or Path.cwd()).absolute()
    if flag is not None:
        return InventoryLocation(Path(flag), InventorySource.FLAG, "--inventory")
    named = environ.get(ENV_VAR)
    if named:
        return InventoryLocation(Path(named), InventorySource.ENV, f"${ENV_VAR}")
    for folder in (start, *start.parents):
        config = folder / CONFIG_NAME
        if config.is_file():
            target = _config_inventory(config)
            if target is not None:
                return InventoryLocation(target, InventorySource.CONFIG, str(config))
        database = folder / FOLDER_NAME / _DATABASE
        if database.is_file():
            return InventoryLocation(database, InventorySource.FOLDER, str(folder / FOLDER_NAME))
    return InventoryLocation(start / FOLDER_NAME / _DATABASE, InventorySource.NONE, "")


def _config_inventory(config: Path) -> Path | None:
    """The ``inventory`` key of a project config, relative to its folder; None without one."""
    try:
        raw = config.read_bytes()[: _MAX_CONFIG_BYTES + 1]
    except OSError as exc:
        raise ProvenanceError(f"cannot read: {exc.strerror}", path=config) from None
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ProvenanceError(f"larger than {_MAX_CONFIG_BYTES} bytes", path=config)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProvenanceError(f"not valid TOML: {exc}", path=config) from None
    value = data.get("inventory")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ProvenanceError("'inventory' must be a non-empty path string", path=config)
    if is_server_url(value):
        return Path(value.strip())
    target = Path(value).expanduser()
    return target if target.is_absolute() else config.parent / target
