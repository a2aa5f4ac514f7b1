"""The outside world: c2pa, keys, files, SQLite, Chromium (docs/architecture.md).

Each module owns one part of it and turns foreign errors into ours at its border.
Private: the public names are re-exported from the root ``provenance``.
"""
