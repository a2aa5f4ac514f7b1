"""The pure core: bytes, arrays and values in, values out (docs/architecture.md).

Nothing here reads a file, a clock or c2pa. Private: the public names are re-exported
from the root ``provenance``.
"""
