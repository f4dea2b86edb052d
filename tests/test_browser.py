"""A real browser on the real app: `streamlit run app.py`, Debian's Chromium driven by Playwright.

Uploads a photo to the resolution explorer, moves the resolution slider, and checks that the
top-5 list follows; a first visit straight to a page URL gets the app's navigation and sidebar. A screenshot goes to ``test-artifacts/`` (or ``$LR0FM_TEST_ARTIFACTS``).
The model is the tiny random-init architecture: its predictions are meaningless, only the
mechanics are tested.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                                reason="Chromium is not installed (.ci/run installs Debian's chromium with apt-get)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_app(tmp_path_factory):
    """Start `streamlit run app.py` on a free port; yield its URL once healthy, stop it after."""
    port = free_port()
    env = {**os.environ, "LR0FM_RANDOM_INIT": "1", "LR0FM_APP_MODEL": "lr0fm-tiny-ViT",
           "LR0FM_CACHE_DIR": str(tmp_path_factory.mktemp("cache")), "LR0FM_DEVICE": "cpu"}
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    command = [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log, "w") as output:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start:\n{log.read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    yield from serve_app(tmp_path_factory)


@pytest.fixture
def fresh_app_url(tmp_path_factory):
    """A server no browser has visited yet."""
    yield from serve_app(tmp_path_factory)


def test_a_first_visit_straight_to_a_page_url_gets_the_app_shell(fresh_app_url):
    """Streamlit's legacy `pages/` mode would run the page alone (no navigation labels of app.py,
    no model sidebar) when a page URL is the server's first request."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        expect.set_options(timeout=90_000)
        try:
            page.goto(f"{fresh_app_url}/Leaderboard")
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_text("Random-init weights (no download)")).to_be_visible()
            expect(sidebar.get_by_role("link", name="Home")).to_be_visible()
            expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible()
            assert page.url.rstrip("/").endswith("/Leaderboard")
        finally:
            browser.close()


def top5(page) -> list[str]:
    """The bar labels and probabilities of the explorer's top-5 chart, as drawn in the page."""
    chart = page.locator(".st-key-explore_topk")
    return chart.locator(".ytick text").all_text_contents() + chart.locator("text.bartext").all_text_contents()


def test_upload_and_slider_update_the_top5(app_url, labeled_photos):
    from playwright.sync_api import expect, sync_playwright

    artifacts = Path(os.environ.get("LR0FM_TEST_ARTIFACTS", REPO / "test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(90_000)
        expect.set_options(timeout=90_000)  # the first run loads the model
        try:
            page.goto(app_url)
            expect(page.get_by_text("untrained", exact=False).first).to_be_visible()
            page.get_by_role("link", name="Resolution explorer").first.click()

            page.get_by_text("Your photos", exact=True).click()
            page.locator("input[type=file]").set_input_files(str(labeled_photos[0]))
            labels = page.get_by_label("Labels")  # a small label set keeps the zero-shot head fast
            labels.click()
            page.get_by_role("option", name="Your own labels").click()

            expect(page.get_by_text("Top-5 at 16 ★")).to_be_visible()
            expect(page.locator(".st-key-explore_topk .ytick text")).to_have_count(5)
            before = top5(page)

            slider = page.get_by_role("slider").first
            slider.focus()
            slider.press("ArrowRight")
            expect(page.get_by_text("Top-5 at 24")).to_be_visible()
            page.wait_for_function(
                "before => { const texts = [...document.querySelectorAll("
                "'.st-key-explore_topk .ytick text, .st-key-explore_topk text.bartext')].map(e => e.textContent);"
                " return texts.length >= 10 && texts.join('|') !== before; }",
                arg="|".join(before))
            after = top5(page)
            page.screenshot(path=str(artifacts / "browser_resolution_explorer.png"), full_page=True)
        finally:
            browser.close()
    assert len(before) >= 5 and len(after) >= 5
    assert before != after  # other probabilities (or labels) at 24 px than at 16 px
    assert all(any(c in text for c in ("cat", "dog", "ship", "truck", "airplane", "automobile", "bird", "deer",
                                       "frog", "horse")) for text in after[:5])
