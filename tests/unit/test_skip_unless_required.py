"""A test whose precondition is missing is skipped locally, and fails where CI requires it."""

from __future__ import annotations

import pytest

from hotline.testing import REQUIRE_ALL_ENV, skip_unless_required


def test_skips_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_ALL_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no broker here"):
        skip_unless_required("no broker here")


def test_fails_when_every_test_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ALL_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=r"no broker here; .* requires this test"):
        skip_unless_required("no broker here")
