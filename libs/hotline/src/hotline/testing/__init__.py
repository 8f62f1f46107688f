"""Test support shared by every service's tests: stack fixtures and topic readers.

Loaded as a pytest plugin by the repository's root conftest.py. Integration tests get a
unique topic namespace and a unique database, so tests never see each other's data.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ALL_ENV = "HOTLINE_TESTS_REQUIRE_ALL"


def skip_unless_required(reason: str) -> NoReturn:
    """Skip a test whose precondition is missing here (an external broker or database, no
    shared sample), or fail it when `HOTLINE_TESTS_REQUIRE_ALL=1`: CI sets it, so a test the
    issues require never passes there by being skipped."""
    if os.environ.get(REQUIRE_ALL_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_ALL_ENV}=1 requires this test to run")
    pytest.skip(reason)
