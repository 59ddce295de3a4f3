"""A real headless Chromium (Debian's `chromium` + `chromium-driver`, driven by Selenium) and a loopback HTTP server
for the dashboard's browser tests and `bench/dashboard.py`.

Without Chromium or chromedriver the tests skip with one line saying what to install, except in CI (CI=true),
where they fail: CI must never pass by skipping them.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

INSTALL = "browser tests need Chromium and its driver: apt-get install chromium chromium-driver"
# Read once at import: the tests' autouse fixture removes CI from the environment of each test.
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def binaries() -> tuple[str, str] | None:
    """(chromium, chromedriver) when both are installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def missing_message() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if binaries() is None:
        return INSTALL
    try:
        import selenium  # noqa: F401 - only whether it is installed
    except ImportError:
        return "browser tests need selenium: pip install -e 'tooling[test]'"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A Selenium driver of a fresh headless Chromium (its own temporary profile), quit and removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = binaries()
    if found is None:
        raise RuntimeError(INSTALL)
    browser, driver_path = found
    with tempfile.TemporaryDirectory(prefix="modelctl-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
        try:
            yield driver
        finally:
            driver.quit()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) for the duration; the base URL, ending with '/'."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="dashboard-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def severe_console_errors(driver: Any) -> list[str]:
    """Messages the page logged at level SEVERE (errors, failed loads) since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]


def first_render_ms(driver: Any) -> dict[str, float]:
    """Navigation timing of the current page (ms from navigation start): first contentful paint, DOMContentLoaded
    and the load event."""
    script = """
        const nav = performance.getEntriesByType("navigation")[0];
        const paint = performance.getEntriesByName("first-contentful-paint")[0];
        return paint ? {fcp: paint.startTime, dom: nav.domContentLoadedEventEnd, load: nav.loadEventEnd} : null;
    """
    deadline = time.monotonic() + 10
    while (timing := driver.execute_script(script)) is None:  # the paint entry can land after the load event
        if time.monotonic() > deadline:
            raise RuntimeError("the page reported no first contentful paint within 10 s")
        time.sleep(0.05)
    return {k: float(v) for k, v in timing.items()}
