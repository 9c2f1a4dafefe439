"""Headless Chromium for the report tests: the driver, what a page logged, and its text checks.

Route: Selenium 4 driving Debian's `chromium` through Debian's `chromedriver`. WebDriver is a
W3C standard kept by the browser vendors, Selenium its maintained client; the DevTools
protocol is still reachable through it (`execute_cdp_cmd`) for the viewport and full-page
screenshots, while console and network events come from ChromeDriver's own logs
(`goog:loggingPrefs`). Both paths are given explicitly, so Selenium Manager never runs and
nothing is downloaded.

On CI (env CI) or with SOCKETGRADE_REQUIRE_BROWSER set, a missing browser fails the tests that
need it, as a missing Docker engine does; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
# The first screen the issue speaks of: a laptop's browser window.
VIEWPORT = (1300, 900)
# A page of ours loads from disk in well under a second; this only bounds a hung browser.
PAGE_LOAD_SECONDS = 30
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# URLs a report may load: itself and inline data. Anything else is the network.
LOCAL_SCHEMES = ("file:", "data:")


def browser_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("SOCKETGRADE_REQUIRE_BROWSER"))


def unavailable(reason: str):
    if browser_required():
        pytest.fail(
            f"a headless browser is required here (CI or SOCKETGRADE_REQUIRE_BROWSER is set) "
            f"but {reason}; scripts/test.sh installs Debian's chromium and chromium-driver",
            pytrace=False,
        )
    pytest.skip(reason)


def start_driver(profile: Path):
    """A headless Chromium showing VIEWPORT, with console and network logging; skips (fails on
    CI) when Selenium, the browser or its driver is missing or will not start."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        unavailable(f"selenium is not importable ({exc}); it is in the test extra")
    binary = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        unavailable("chromium or chromedriver is not on PATH")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        # As root (CI, containers) Chromium refuses to start with its own sandbox; the pages
        # are the kit's, opened from disk.
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
        f"--user-data-dir={profile}",
        # The browser's own traffic (updates, sync, metrics) is not the page's; keep it off.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    except WebDriverException as exc:
        unavailable(f"chromium did not start ({exc.msg or exc})")
    driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
    # The layout viewport itself, not the window around it: the first screen is exactly this.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


@dataclass(frozen=True)
class Visit:
    """What opening one page left behind: console errors and every URL it asked for."""

    errors: list[str]
    requests: list[str]

    @property
    def remote(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(LOCAL_SCHEMES)]


def _drain(driver) -> None:
    driver.get_log("browser")
    driver.get_log("performance")


def visit(driver, page: Path) -> Visit:
    """Open `page` from disk (scrolled to the top) and collect what it logged while loading."""
    _drain(driver)
    driver.get(page.resolve().as_uri())
    # Let the page's script and any late request run before the logs are read.
    driver.execute_script("return new Promise(r => requestAnimationFrame(() => setTimeout(r)))")
    return Visit(console_errors(driver), requested_urls(driver))


def console_errors(driver) -> list[str]:
    """Console messages at error level (uncaught exceptions, CSP refusals, failed loads)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        event = json.loads(entry["message"])["message"]
        if event.get("method") == "Network.requestWillBeSent":
            urls.append(event["params"]["request"]["url"])
    return urls


def screenshot(driver, name: str) -> Path:
    """The first screen and the whole page, saved as test artifacts (<name>.png,
    <name>-full.png under test-artifacts/browser/)."""
    import base64

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    first = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(first))
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    (ARTIFACTS / f"{name}-full.png").write_bytes(base64.b64decode(shot["data"]))
    return first


# --- English left in a Chinese page -------------------------------------------------------

# Where English belongs in a zh page: code, program output, keys, and what is marked as
# not to be translated (ids, names, paths).
UNTRANSLATED = "code, pre, kbd, samp, [translate=no]"

# Every text node of the page (its <title> too) outside UNTRANSLATED, <script> and <style>.
TEXT_NODES_JS = """
const skip = arguments[0];
const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
const found = [];
for (let node = walker.nextNode(); node; node = walker.nextNode()) {
  const parent = node.parentElement;
  if (!parent || parent.closest('script, style') || parent.closest(skip)) { continue; }
  const text = node.nodeValue.trim();
  if (!text) { continue; }
  const path = [];
  for (let e = parent; e && e !== document.documentElement && path.length < 4;
       e = e.parentElement) {
    path.unshift(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                 + (e.classList.length ? '.' + [...e.classList].join('.') : ''));
  }
  found.push([path.join(' > '), text]);
}
return found;
"""

# Precisely: the text is cut at every character outside printable ASCII (Chinese, its
# punctuation, symbols such as ✓ or ·), and each piece into tokens at whitespace. A token is
# an English word when, its leading and trailing ASCII punctuation stripped, it is two or more
# letters with at most inner apostrophes or hyphens ("don't", "non-blocking"), or the article
# "a". A run of THRESHOLD words, one token after another, is an English sentence. So numbers,
# units and ids stay allowed: "fd 5", "0.12 s", "server.py:14", "EVENT_READ", "SIGKILL",
# "64 KiB", "客户端 A B 和 C", "recv()"; a lone identifier or two in Chinese text too.
THRESHOLD = 3
_PIECES = re.compile(r"[^\x20-\x7e\s]+")
_WORD = re.compile(r"a|[A-Za-z]{2,}(?:['-][A-Za-z]+)*")
_PUNCT = "\"'()[]{}<>.,;:!?`"


def english_runs(text: str, threshold: int = THRESHOLD) -> list[str]:
    """The runs of `threshold` or more English words in `text` (see above)."""
    runs: list[str] = []
    for piece in _PIECES.split(text):
        current: list[str] = []
        for token in [*piece.split(), ""]:
            if token and _WORD.fullmatch(token.strip(_PUNCT)):
                current.append(token)
                continue
            if len(current) >= threshold:
                runs.append(" ".join(current))
            current = []
    return runs


def english_outside_code(driver) -> list[str]:
    """Where the open page speaks English outside code and identifiers: 'path: "run"'."""
    found = []
    for path, text in driver.execute_script(TEXT_NODES_JS, UNTRANSLATED):
        found.extend(f"{path}: {run!r}" for run in english_runs(text))
    return found
