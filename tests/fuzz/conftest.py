"""Hypothesis profiles for the fuzz targets.

``ci`` (the default) is short and deterministic: derandomized, no example
database, no deadline, so ``make test`` gives the same answer on every machine.
``fuzz`` is the long run, documented in docs/security.md::

    HYPOTHESIS_PROFILE=fuzz pytest -p no:cacheprovider tests/fuzz

It draws fresh random examples and keeps failures in ``.hypothesis/`` so a
crash found once is replayed first next time; copy it into a regression test.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "5000")),
    deadline=None,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
