"""Headless Chromium for the browser tests: Debian's ``chromium`` and ``chromium-driver`` with selenium.

Where the browser is missing the tests skip, except under ``CI``, where they fail
(``.ci/browser`` installs it). Screenshots go to ``tests/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WAIT_SECONDS = 20  # an upper bound for polling the page, never a sleep


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the browser tests need headless Chromium under CI: {reason}")
    pytest.skip(f"no headless Chromium: {reason}")


def chromium_driver(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium WebDriver (skips locally, fails under CI, when there is none)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        _missing(f"selenium is not installed ({exc})")
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        _missing("install Debian's chromium and chromium-driver (.ci/browser does)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary  # type: ignore[assignment]
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--lang=en-GB",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as exc:  # a broken install: same rule as a missing one
        _missing(f"chromium did not start ({type(exc).__name__}: {exc})")


def wait_for(driver: Any, condition: Callable[[Any], Any], message: str = "") -> Any:
    """Poll the page until ``condition`` is truthy (bounded by WAIT_SECONDS)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)  # the page re-rendered meanwhile
    return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.05, ignored_exceptions=ignored).until(
        condition, message
    )


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
