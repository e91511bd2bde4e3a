"""The dashboard in a real browser: Debian's headless chromium driven by Playwright against a real server.

Each row of the held service waits for a gate file of its own that the test creates: the batch runs, and its rows
finish, exactly when the test says, however busy the machine. Every wait is Playwright's ``expect`` (no sleeps).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchscore_server import Role, RunningServer, add_user
from tests.e2e.conftest import login, wait_until_finished

CHROMIUM = Path(os.environ.get("BATCHSCORE_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER_ENV = "BATCHSCORE_REQUIRE_BROWSER"
ARTIFACTS_ENV = "BATCHSCORE_TEST_ARTIFACTS"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 120_000  # a ceiling for a busy machine, never a pause: expect returns as soon as the page agrees
BAR_FILL = (0x1F, 0x77, 0xB4)  # .bar .ok in templates/dashboard/base.html
SERVICE = "dashGate"
OTHER_USER, OTHER_PASSWORD = "dashOther", "pw-dash-other"
INJECTED = '<img src=x onerror="window.__pwned=1">'
ROWS = 4
FAILING_ROW = 3

if os.environ.get(REQUIRE_BROWSER_ENV):  # CI: a missing Playwright is a failure too, never a skip
    import playwright.sync_api as playwright_sync
else:
    playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


def _browser_missing() -> str | None:
    if CHROMIUM.exists():
        return None
    reason = f"no chromium at {CHROMIUM} (apt-get install chromium; nox -s tests installs it)"
    if os.environ.get(REQUIRE_BROWSER_ENV):
        pytest.fail(f"{REQUIRE_BROWSER_ENV} is set but there is {reason}")
    return reason


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _browser_missing()
    if reason is not None:
        pytest.skip(reason)
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gates")


@pytest.fixture(scope="module")
def held_service(api: httpx.Client, server: RunningServer, gates: Path) -> str:
    """A service whose row ``x`` finishes once ``gates/x`` exists (row ``FAILING_ROW`` with an HTML error)."""
    code = f"""
import os, time
deadline = time.monotonic() + 600
while not os.path.exists(os.path.join({str(gates)!r}, str(x))) and time.monotonic() < deadline:
    time.sleep(0.02)
with open("report.txt", "w") as handle:
    handle.write(f"row {{x}}")
if x == {FAILING_ROW}:
    raise ValueError({INJECTED!r})
answer = x
"""
    body = {
        "code": code,
        "runtimeType": "Python",
        "description": "<script>window.__pwned=2</script>held rows",
        "inputParameterDefinitions": [{"name": "x", "type": "integer"}],
        "outputParameterDefinitions": [{"name": "answer", "type": "integer"}],
        "outputFileNames": ["report.txt"],
    }
    assert api.post(f"/services/{SERVICE}/v1", json=body).status_code == 201
    add_user(server.settings.data_dir, OTHER_USER, OTHER_PASSWORD, Role.CONTRIBUTOR, server.settings.database_url)
    return SERVICE


@pytest.fixture(scope="module")
def held_batch(api: httpx.Client, page: Any, gates: Path) -> Iterator[str]:
    """A running batch of ``ROWS`` rows of the held service, started after the page was loaded."""
    started = api.post(f"/api/{SERVICE}/v1/batch", json=[{"x": i} for i in range(ROWS)], params={"parallelCount": 4})
    assert started.status_code == 202, started.text
    yield str(started.json()["batchExecutionId"])
    for index in range(ROWS):  # a test that failed half-way must not leave rows holding the shared server's workers
        (gates / str(index)).touch()


def _log_in(browser: Any, server: RunningServer, username: str = "admin", password: str | None = None) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(server.url + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or server.admin_password)
    page.click("button[type=submit]")
    expect(page.get_by_role("button", name="Log out")).to_be_visible(timeout=WAIT_MS)
    return page


@pytest.fixture(scope="module")
def page(browser: Any, server: RunningServer, held_service: str) -> Iterator[Any]:
    page = _log_in(browser, server)
    yield page
    page.context.close()


def _api_batch(api: httpx.Client, batch_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/api/{SERVICE}/v1/batch/{batch_id}", params={"limit": 1}).json()
    return body


def _artifacts_dir(tmp_path: Path) -> Path:
    given = os.environ.get(ARTIFACTS_ENV)
    directory = Path(given) if given else tmp_path
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_a_wrong_password_gives_the_form_again(browser: Any, server: RunningServer) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url + "/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.", timeout=WAIT_MS)
    expect(page.locator("input[name=password]")).to_be_visible()
    assert not [cookie for cookie in context.cookies() if cookie["name"] == "batchscore_session"]
    context.close()


def test_services_are_listed_with_their_inputs_and_outputs(page: Any) -> None:
    row = page.locator(f"tr.service[data-service={SERVICE}]")
    expect(row.locator("td.inputs")).to_have_text("x: integer")
    expect(row.locator("td.outputs")).to_have_text("answer: integer")
    expect(row).to_contain_text("<script>window.__pwned=2</script>held rows")  # shown as text, never run
    assert page.evaluate("window.__pwned") is None


def test_a_running_batch_shows_live_counts_and_a_progress_bar(
    page: Any, api: httpx.Client, held_batch: str, gates: Path, tmp_path: Path
) -> None:
    from PIL import Image

    row = page.locator(f"tr[data-batch-id='{held_batch}']")
    bar = row.get_by_role("progressbar")
    # Started after the page loaded: the poll brings it in without a reload.
    expect(row.locator("td.state")).to_have_text("inProgress", timeout=WAIT_MS)
    expect(bar).to_have_attribute("aria-valuenow", "0")
    (gates / "0").touch()
    expect(row.locator("td.completed")).to_have_text("1", timeout=WAIT_MS)
    expect(bar).to_have_attribute("aria-valuenow", "1")
    expect(bar).to_have_attribute("aria-valuemax", str(ROWS))
    counts = _api_batch(api, held_batch)
    assert counts["state"] == "inProgress"
    assert counts["completedItemCount"] == 1
    assert counts["totalItemCount"] == ROWS
    expect(row.locator("td.total")).to_have_text(str(counts["totalItemCount"]))

    # The screenshot of the running batch, and the bar's fill colour where the bar is drawn in it.
    shot = _artifacts_dir(tmp_path) / "dashboard-running.png"
    # The viewport, with the bar in it: its bounding box is in the viewport's coordinates (other tests' services
    # can push the batches below the fold).
    bar.scroll_into_view_if_needed()
    page.screenshot(path=str(shot))
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data)).convert("RGB")
    assert image.width >= 800
    assert image.height >= 300
    box = bar.bounding_box()
    assert box is not None
    assert box["width"] > 50
    region = image.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"])))
    raw = region.tobytes()
    pixels = [raw[i : i + 3] for i in range(0, len(raw), 3)]
    filled = sum(1 for pixel in pixels if all(abs(c - want) <= 12 for c, want in zip(pixel, BAR_FILL, strict=True)))
    # A quarter of the bar (one row of four) is the fill colour; the rest is the track's grey.
    assert filled >= 0.15 * region.width * region.height, f"{filled} fill pixels in the bar's {region.size}"
    assert filled <= 0.40 * region.width * region.height

    # Live: more rows finish, the page follows with no reload.
    (gates / "1").touch()
    expect(row.locator("td.completed")).to_have_text("2", timeout=WAIT_MS)
    expect(bar).to_have_attribute("aria-valuenow", "2")
    assert _api_batch(api, held_batch)["completedItemCount"] == 2


def test_a_batch_page_lists_failed_rows_and_files(page: Any, api: httpx.Client, held_batch: str, gates: Path) -> None:
    for index in range(ROWS):
        (gates / str(index)).touch()
    final = wait_until_finished(api, SERVICE, held_batch)
    assert final["failedItemCount"] == 1
    row = page.locator(f"tr[data-batch-id='{held_batch}']")
    expect(row.locator("td.state")).to_have_text(final["state"], timeout=WAIT_MS)
    expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", str(final["completedItemCount"]))
    expect(row.locator("td.failed")).to_have_text("1")
    row.locator("a").click()
    failed = page.locator(f"#failed tr[data-index='{FAILING_ROW}']")
    expect(failed).to_contain_text(INJECTED, timeout=WAIT_MS)  # the error, as text
    assert page.locator("#failed img").count() == 0
    assert page.evaluate("window.__pwned") is None
    link = page.locator("#files a.file").first
    expect(link).to_have_text("report.txt")
    with page.expect_download(timeout=WAIT_MS) as download:
        link.click()
    assert Path(download.value.path()).read_text(encoding="utf-8") == "row 0"


def test_another_user_does_not_see_the_batch(browser: Any, server: RunningServer, held_batch: str, page: Any) -> None:
    other = _log_in(browser, server, OTHER_USER, OTHER_PASSWORD)
    expect(other.locator(f"tr.service[data-service={SERVICE}]")).to_have_count(1)  # services are for everyone
    expect(other.locator("#no-batches")).to_be_visible()
    assert other.locator(f"tr[data-batch-id='{held_batch}']").count() == 0
    listed = other.request.get(server.url + "/dashboard/batches.json")
    assert listed.status == 200
    assert held_batch not in listed.text()
    batch_page = other.request.get(f"{server.url}/dashboard/batches/{SERVICE}/v1/{held_batch}")
    assert batch_page.status == 404
    assert "not found" in batch_page.text()
    assert "report.txt" not in batch_page.text()
    download = other.request.get(f"{server.url}/dashboard/batches/{SERVICE}/v1/{held_batch}/0/files/report.txt")
    assert download.status == 404
    other.context.close()


def test_logout_and_unauthenticated_requests(browser: Any, server: RunningServer, held_batch: str) -> None:
    context = browser.new_context()
    anonymous = context.request.get(server.url + "/dashboard/batches.json")
    assert anonymous.status == 401
    denied = context.request.get(f"{server.url}/dashboard/batches/{SERVICE}/v1/{held_batch}/0/files/report.txt")
    assert denied.status == 401
    context.close()
    page = _log_in(browser, server)
    assert page.request.get(server.url + "/dashboard/batches.json").status == 200
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("input[name=password]")).to_be_visible(timeout=WAIT_MS)
    assert page.request.get(server.url + "/dashboard/batches.json").status == 401
    page.context.close()


def test_the_api_token_is_not_a_dashboard_session(server: RunningServer) -> None:
    # A bearer header opens the API, not the cookie-authenticated dashboard endpoint (and the other way round).
    token = login(server)["access_token"]
    answer = httpx.get(server.url + "/dashboard/batches.json", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
