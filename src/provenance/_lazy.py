"""Public names imported on first use (PEP 562): what keeps a package cheap to import.

The package root and :mod:`provenance.batch` name each public object and the module
it comes from; their module ``__getattr__`` is :func:`resolver`'s function, which
imports that module when the name is first used and keeps the object in the
package's namespace, so the next use is a plain attribute read. Standard library
only: importing this costs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping

__all__ = ["resolver"]


def resolver(
    package: str,
    namespace: MutableMapping[str, object],
    where: Mapping[str, str],
    modules: frozenset[str],
) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports its names on first use.

    Args:
        package: The package's ``__name__``.
        namespace: Its ``globals()``, where a resolved object is kept.
        where: Each public name and the module that defines it.
        modules: The package's own submodules, imported when named as an
            attribute (the import system then sets the attribute itself).

    Returns:
        The function to bind as the package's ``__getattr__``.
    """

    def resolve(name: str) -> object:
        """Import the module behind a public name, keep the name here, and return it."""
        if name in modules:
            return importlib.import_module(f"{package}.{name}")  # sets the attribute
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return resolve
