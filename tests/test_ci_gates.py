"""Missing parts of the test set-up: a skip on a developer machine, a failure in CI (``CI=true``)."""

from __future__ import annotations

import pytest

import devstack.chromium
from tests.e2e.browser import require_chromium


@pytest.fixture
def no_chromium(tmp_path, monkeypatch):
    monkeypatch.setattr(devstack.chromium, "CHROMIUM", str(tmp_path / "no-such-chromium"))


def test_missing_chromium_fails_in_ci(no_chromium, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"chromium is not installed.*CI=true"):
        require_chromium()


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_missing_chromium_skips_elsewhere(no_chromium, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        require_chromium()


def test_installed_chromium_passes_the_gate(tmp_path, monkeypatch):
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    monkeypatch.setattr(devstack.chromium, "CHROMIUM", str(browser))
    monkeypatch.setenv("CI", "true")
    require_chromium()  # neither skips nor fails
