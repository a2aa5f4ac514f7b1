"""Hypothesis profiles: see tests/conftest.py, which registers and loads them for the whole suite.

``ci`` (the default) is short and deterministic: derandomized, no example
database, no deadline, so ``make test`` gives the same answer on every machine.
``fuzz`` is the long run, documented in docs/security.md::

    HYPOTHESIS_PROFILE=fuzz pytest -p no:cacheprovider tests/fuzz

It draws fresh random examples and keeps failures in ``.hypothesis/`` so a
crash found once is replayed first next time; copy it into a regression test.
"""
