"""The live page over HTTP against a real orchestrator, and in a real (headless) browser during `feles run`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from feles.local import LocalRun, LocalRunOptions
from tests.integration.conftest import AUTH, TOKEN, Processes, free_port, wait_for_status, write_spec
from tests.live_records import write_round
from tests.operator.tools import missing_tool

pytestmark = pytest.mark.integration

#: Where the browser test also copies its screenshots (docs/images/live.png comes from there).
SCREENSHOTS_ENV = "FELES_LIVE_SCREENSHOTS"


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    """An orchestrator that ran 3 rounds and keeps serving; its client and output folder."""
    folder = tmp_path_factory.mktemp("live")
    owner = Processes(folder)
    port = free_port()
    try:
        owner.orchestrator(write_spec(folder, {"simulation": {"num_rounds": 3}}), port)
        owner.worker(port)
        wait_for_status(port, lambda status: status["phase"] == "Succeeded")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http, folder / "out"
    finally:
        owner.stop_all()


def test_the_page_is_served_without_the_token_and_holds_no_data(finished: tuple[httpx.Client, Path]) -> None:
    http, _ = finished
    page = http.get("/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    run_id = http.get("/v1/results", headers=AUTH).json()["run_id"]
    assert "FELES" in page.text and TOKEN not in page.text and "digits" not in page.text and run_id not in page.text
    script = http.get("/ui/static/live.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert http.get("/ui/static/live.css").headers["content-type"].startswith("text/css")
    assert http.get("/ui/static/other.js").status_code == 404
    assert http.get("/ui/static/live.html").status_code == 404
    # Nothing the page loads comes from elsewhere: no CDN, no font service.
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)


def test_the_data_needs_the_token(finished: tuple[httpx.Client, Path]) -> None:
    http, _ = finished
    assert http.get("/v1/ui/data").status_code == 401
    assert http.get("/v1/ui/data", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert http.get("/v1/ui/data", headers=AUTH).status_code == 200


def _data(http: httpx.Client, **params: int) -> dict[str, Any]:
    answer = http.get("/v1/ui/data", params=params, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_each_poll_carries_only_what_the_page_lacks(finished: tuple[httpx.Client, Path]) -> None:
    http, _ = finished
    results = http.get("/v1/results", headers=AUTH).json()
    first = _data(http)
    assert first["status"]["phase"] == "Succeeded" and first["status"]["round"] == 3
    assert (first["since"], first["total"]) == (0, 3)
    assert first["rounds"] == results["rounds"] and first["spec"] == results["spec"]
    assert first["run_id"] == results["run_id"] and first["repetitions"] == results["repetitions"]
    later = _data(http, since=2)
    assert (later["since"], later["total"], [r["round"] for r in later["rounds"]]) == (2, 3, [2])
    assert later["spec"] is None
    assert _data(http, since=3)["rounds"] == []
    assert _data(http, since=10)["since"] == 0  # ahead of the server: start over
    assert http.get("/v1/ui/data", params={"since": -1}, headers=AUTH).status_code == 422


def test_device_records_appear_as_they_are_written(finished: tuple[httpx.Client, Path]) -> None:
    http, output = finished
    results = http.get("/v1/results", headers=AUTH).json()["rounds"]
    devices = _data(http)["devices"]
    # The orchestrator's own records of the 3 rounds: who was selected and who failed, as results.json counts.
    assert devices["available"] is True and (devices["since"], devices["total"]) == (0, 3)
    assert (devices["devices"], devices["rows"], devices["device_bin"], devices["columns"]) == (20, 20, 1, 3)
    assert [sum(r["selected"]) for r in devices["rounds"]] == [row["fit_selected"] for row in results]
    assert [sum(r["failed"]) for r in devices["rounds"]] == [row["fit_failed"] for row in results]
    assert sum(devices["histogram"]["counts"]) == 20
    # A part written later (here by hand) appears in the next poll, which carries only what is new.
    write_round(output, 0, 3, [2, 5], failed=[5])
    later = _data(http, records=3)["devices"]
    assert (later["since"], later["total"], [r["round"] for r in later["rounds"]]) == (3, 4, [3])
    assert later["rounds"][0]["selected"][2] == 1 and later["rounds"][0]["failed"][5] == 1


def test_openapi_documents_the_data_endpoint_only(finished: tuple[httpx.Client, Path]) -> None:
    paths = finished[0].get("/openapi.json").json()["paths"]
    assert "/v1/ui/data" in paths and "/ui" not in paths


def test_feles_run_hands_out_the_page_with_the_token_in_the_fragment(tmp_path: Path) -> None:
    urls: list[str] = []
    local = LocalRun(LocalRunOptions(write_spec(tmp_path, {"simulation": {"num_rounds": 1}}), workers=1))
    local.run(on_page=urls.append)
    assert len(urls) == 1 and re.fullmatch(rf"http://127\.0\.0\.1:\d+/ui#token={re.escape(local.token)}", urls[0])


# ---- a real browser during a real run ----


def _browser() -> Any:
    """Headless Chromium through selenium; skipped where they are missing (failed under CI)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing_tool("pip install selenium for the browser test of the live page")
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        missing_tool(
            "the browser test of the live page needs chromium and chromedriver (apt: chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1650"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit chromedriver: selenium's own manager would try to download one.
    return webdriver.Chrome(options=options, service=Service(driver))


def _printed_url(process: subprocess.Popen[str], timeout: float = 120) -> str:
    """The `live view: URL` line `feles run` prints first; the rest of its output is drained meanwhile."""
    lines: list[str] = []
    printed = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:  # to the end: a full pipe would block feles run
            lines.append(line)
            if line.startswith("live view: "):
                printed.set()

    threading.Thread(target=read, daemon=True).start()
    assert printed.wait(timeout), f"feles run printed no live view URL: {lines[-10:]}"
    return next(line for line in lines if line.startswith("live view: ")).removeprefix("live view: ").strip()


def _shoot(browser: Any, path: Path) -> None:
    browser.save_screenshot(str(path))
    if os.environ.get(SCREENSHOTS_ENV):
        shutil.copy(path, Path(os.environ[SCREENSHOTS_ENV]) / path.name)


def _page(browser: Any, script: str) -> Any:
    return browser.execute_script(f"return {script}")


def test_the_page_follows_a_run_in_a_real_browser(tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    # 200 devices, 10 epochs: rounds of about a second, slow enough to watch them come.
    overrides = {
        "simulation": {"num_rounds": 12},
        "devices": {"num": 200},
        "algorithms": {"fit": {"params": {"k": 0.1, "epochs": 10}}, "eval": {"params": {"k": 0.05}}},
    }
    spec = write_spec(tmp_path, overrides)
    command = [sys.executable, "-m", "feles", "run", str(spec), "--workers", "1"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        url = _printed_url(run)
        base, token = url.split("/ui#token=")

        # Without the token: the form, and a wrong token is refused.
        browser.get(f"{base}/ui")
        WebDriverWait(browser, 60).until(lambda b: _page(b, "!document.getElementById('auth').hidden"))
        browser.find_element("id", "auth-token").send_keys("wrong")
        browser.find_element("css selector", "#auth-form button").click()
        WebDriverWait(browser, 10).until(lambda b: "not accepted" in b.find_element("id", "auth-reason").text)

        # The link feles run printed, in a fresh page: authorised at once, and the token leaves the address bar.
        browser.get("about:blank")
        browser.get(url)
        WebDriverWait(browser, 60).until(lambda b: int(_page(b, "document.getElementById('round').dataset.round")) >= 1)
        assert browser.current_url == f"{base}/ui"
        assert _page(browser, "sessionStorage.getItem('feles-live-token')") == token
        round_, points = _page(browser, "[window.felesLive.status.round, window.felesLive.rounds.length]")
        _shoot(browser, tmp_path / "live-running.png")

        def advanced(b: Any) -> bool:
            now = int(_page(b, "document.getElementById('round').dataset.round"))
            drawn = int(_page(b, "document.getElementById('chart-accuracy').dataset.points"))
            return now > round_ and drawn > points

        WebDriverWait(browser, 120).until(advanced)
        WebDriverWait(browser, 180).until(lambda b: _page(b, "window.felesLive.finished"))
        assert _page(browser, "document.getElementById('chart-accuracy').dataset.points") == "12"
        assert _page(browser, "document.getElementById('phase').textContent") == "Succeeded"
        WebDriverWait(browser, 10).until(lambda b: _page(b, "!document.getElementById('records-panel').hidden"))
        # The orchestrator's device records: every round's column of the selection matrix.
        assert int(_page(browser, "document.getElementById('chart-matrix').dataset.rounds")) == 12
        _shoot(browser, tmp_path / "live.png")
        # No script error and nothing the Content-Security-Policy blocked, from the first load on.
        problems = ("Content Security Policy", "Uncaught")
        assert not [entry for entry in browser.get_log("browser") if any(p in entry["message"] for p in problems)]
        assert run.wait(timeout=120) == 0
    finally:
        browser.quit()
        if run.poll() is None:
            run.kill()
            run.wait()
