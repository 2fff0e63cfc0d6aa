"""The demo in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright)
against `make demo`'s Voilà app and against notebook 05 in JupyterLab. Screenshots go to
reports/browser/ (not tracked). `.ci/run` installs Chromium where it is missing and sets
GENSEG_REQUIRE_BROWSER=1, so in CI a missing browser fails instead of skipping."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "05_demo.ipynb"
SHOTS = ROOT / "reports" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
STARTUP_S = 240  # the app runs the notebook (data, prompter) before it answers

if not CHROMIUM:
    if os.environ.get("GENSEG_REQUIRE_BROWSER"):
        raise RuntimeError("GENSEG_REQUIRE_BROWSER is set but no chromium is on the PATH")
    pytest.skip("no chromium on the PATH (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _server(cmd: list[str], url: str, cwd: Path, log: Path):
    """Start a server, wait until ``url`` answers, stop it afterwards."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except urllib.error.HTTPError:
                break  # it answers: up
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(
                        f"{cmd[2]} did not start: {log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.5)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _segment_and_check(page, root_selector: str, shot: str) -> None:
    """Pick the fourth sample, press Segment, wait for the answer text and the figure (and
    save a screenshot), then check that an unknown word is flagged and not run."""
    app = page.locator(root_selector)
    dropdown = app.locator(".widget-dropdown select").first
    dropdown.select_option(index=3)
    query = app.locator(".widget-text input").first
    # (ipywidgets writes option labels with non-breaking spaces)
    picked = dropdown.evaluate("s => s.options[s.selectedIndex].text").replace("\xa0", " ")
    page.wait_for_function(  # picking fills the query box
        "([el, q]) => el.value === q", arg=[query.element_handle(), picked.split(": ", 1)[1]]
    )
    app.locator("button", has_text="Segment").first.click()
    output = app.locator(".widget-output").first
    output.locator("img").first.wait_for(timeout=60_000)
    text = output.inner_text()
    assert "<think>" in text and "</answer>" in text, text
    page.screenshot(path=str(SHOTS / shot), full_page=True)
    # an unknown word is flagged as it is typed and the query is not run
    query.fill("a photo of a dog")
    query.press("Enter")
    app.get_by_text("unknown word(s): photo, dog").wait_for(timeout=10_000)
    app.locator("button", has_text="Segment").first.click()
    output.get_by_text("Not run: this prompter does not know").wait_for(timeout=30_000)


def test_voila_app_segments_a_sample(browser, tmp_path):
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "voila",
        str(NOTEBOOK),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
    ]
    with _server(cmd, f"http://127.0.0.1:{port}/api", ROOT, tmp_path / "voila.log"):
        page = browser.new_page(viewport={"width": 1100, "height": 1300})
        page.goto(f"http://127.0.0.1:{port}/", timeout=STARTUP_S * 1000)
        page.locator("button", has_text="Segment").first.wait_for(timeout=STARTUP_S * 1000)
        code = page.locator(".jp-CodeCell .jp-InputArea, .cm-editor, .CodeMirror").all()
        assert not any(c.is_visible() for c in code)  # no code cells shown
        assert page.get_by_text("Demo: reason, then segment").first.is_visible()
        _segment_and_check(page, "body", "demo_voila.png")
    assert (SHOTS / "demo_voila.png").stat().st_size > 10_000


def test_notebook_runs_in_jupyterlab(browser, tmp_path):
    # a copy: JupyterLab autosaves, and the tracked notebook must stay free of outputs
    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    port, token = _free_port(), "genseg-browser-test"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={work}",
        "--allow-root",
    ]
    with _server(cmd, f"http://127.0.0.1:{port}/api", work, tmp_path / "lab.log"):
        page = browser.new_page(viewport={"width": 1300, "height": 1400})
        page.goto(
            f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={token}", timeout=120_000
        )
        try:
            page.locator(".jp-Notebook").first.wait_for(timeout=120_000)
            # the kernel is connected once the status bar says so
            page.get_by_text("Python 3 (ipykernel) | Idle").first.wait_for(timeout=120_000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            run_all = page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first
            run_all.wait_for(timeout=10_000)
            page.wait_for_timeout(500)  # the menu opens with an animation
            run_all.click()
            page.locator(".jp-OutputArea button", has_text="Segment").first.wait_for(
                timeout=STARTUP_S * 1000
            )
            _segment_and_check(page, ".jp-Notebook", "demo_jupyterlab.png")
        except Exception:
            page.screenshot(path=str(SHOTS / "demo_jupyterlab_failed.png"), full_page=True)
            raise
    assert (SHOTS / "demo_jupyterlab.png").stat().st_size > 10_000
