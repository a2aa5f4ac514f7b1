"""Griffe extension for the docs build only: render Sphinx-style roles as code.

The source docstrings are Google style but cross-reference with Sphinx roles
(``:class:`~provenance._core.types.Verdict```) and end paragraphs before literal blocks
with ``::``. Markdown shows both literally, so this extension rewrites them before
mkdocstrings renders a docstring: a role becomes a code span of its display text
(the last component with ``~``, the title with ``title <target>``), and a trailing
``::`` becomes ``:``. It changes nothing in the source files.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|attr|data|mod|exc|obj|const|term|ref):`(?P<body>[^`]+)`"
)
_TITLED = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$", re.S)
_LITERAL_INTRO = re.compile(r"(?<=\S)::[ \t]*$", re.M)


def _display(match: re.Match[str]) -> str:
    body = " ".join(match.group("body").split())
    titled = _TITLED.match(body)
    if titled:
        return f"`{titled.group('title')}`"
    if body.startswith("~"):
        body = body[1:].rsplit(".", 1)[-1]
    return f"`{body}`"


def rewrite(text: str) -> str:
    """Return ``text`` with Sphinx roles as code spans and ``::`` as ``:``."""
    return _LITERAL_INTRO.sub(":", _ROLE.sub(_display, text))


class SphinxRolesAsCode(Extension):
    """Rewrite every docstring once the object tree is complete."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        """Rewrite this object's docstring in place (memory only)."""
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
