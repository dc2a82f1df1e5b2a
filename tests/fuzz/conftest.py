"""Hypothesis profiles for the fuzz tests.

`ci` (the default) is bounded and derandomized, so every run tries the same examples and a failure
reproduces. `deep` (ASYNCRUN_FUZZ_PROFILE=deep) tries 20 times more (see `strategies.budget`), with
fresh randomness each run, for hunting locally. No example database is written: a failure prints
its example, and the fix gets an `@example` or a plain regression test.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Examples share one real server per test (a function-scoped fixture), on purpose.
_SHARED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, database=None, suppress_health_check=_SHARED
)
settings.register_profile(
    "deep", max_examples=2000, deadline=None, database=None, suppress_health_check=_SHARED
)
settings.load_profile(os.environ.get("ASYNCRUN_FUZZ_PROFILE", "ci"))
