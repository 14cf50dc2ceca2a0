"""A person in headless Chromium: log in, see the charts with their axes, re-run a failed
task, halt and resume trading, ask why the bot did (not) trade, read the settings, reset the
paper account; every page under the app's strict CSP, refreshing itself in place. Uses
Debian's chromium and chromedriver (nothing is downloaded). Screenshots go to the stack's
state folder."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

import celeryconfig
from tests.conftest import RALLY
from tests.e2e.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium and chromium-driver (see .ci/run)")
    pytest.skip("needs Debian's chromium and chromium-driver", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.expected_conditions import staleness_of  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


def wait_for(browser, check, timeout: float, what: str, reload: bool = True):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
        if reload:
            browser.refresh()
    raise AssertionError(f"never saw {what}; page:\n{browser.page_source[:3000]}")


def text(browser) -> str:  # type: ignore[no-untyped-def]
    return browser.find_element(By.TAG_NAME, "body").text


def submit(browser, action: str, **fields: str) -> None:  # type: ignore[no-untyped-def]
    """Fill and post a form, and return once the answer page has replaced this one."""
    form = browser.find_element(By.CSS_SELECTOR, f"form[action$='{action}']")
    for name, value in fields.items():
        box = form.find_element(By.NAME, name)
        box.clear()
        box.send_keys(value)
    page = browser.find_element(By.TAG_NAME, "html")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 30).until(staleness_of(page))


def pause_refresh(browser, paused: bool = True) -> None:  # type: ignore[no-untyped-def]
    """What the page's pause toggle does, for this tab: refresh.js reads it on every tick."""
    if paused:
        browser.execute_script("window.sessionStorage.setItem('cdb-refresh-paused', '1')")
    else:
        browser.execute_script("window.sessionStorage.removeItem('cdb-refresh-paused')")


def failed_task(stack) -> None:  # type: ignore[no-untyped-def]
    """A task run that fails: a risk task handed something that is not a run id."""
    from app import create_app
    from app.config import load_settings

    settings = load_settings(
        env_file=None,
        redis_url=stack.env["REDIS_URL"],
        redis_key_prefix=stack.env["REDIS_KEY_PREFIX"],
        state_dir=stack.state_dir,
    )
    celery = create_app(settings).extensions["celery"]
    celery.send_task(celeryconfig.RISK_TASK, args=["not-a-run"])
    celery.close()


def test_operator_session(stack, browser, tmp_path):
    browser.get(f"{stack.web}/admin/")
    assert "/admin/login" in browser.current_url
    submit(browser, "/admin/login", username="admin", password="wrong")
    assert "Log in" in browser.title or "login" in browser.current_url
    assert "ADMIN_PASSWORD" in text(browser) and ADMIN_PASSWORD not in browser.page_source
    shot(browser, stack, "login")
    submit(browser, "/admin/login", username="admin", password=ADMIN_PASSWORD)
    assert "Dashboard" in text(browser)
    pause_refresh(browser)  # pages read below are not swapped under the test's feet

    def equity_line():
        lines = browser.find_elements(By.CSS_SELECTOR, "svg.chart polyline")
        return lines and len(lines[0].get_attribute("points").split()) >= 2

    wait_for(browser, equity_line, 120, "an equity curve of two or more snapshots")
    assert browser.find_elements(By.CSS_SELECTOR, "svg.chart circle.end")
    browser.save_screenshot(str(Path(stack.state_dir) / "dashboard.png"))

    failed_task(stack)
    browser.get(f"{stack.web}/admin/tasks?state=FAILURE")
    link = wait_for(
        browser,
        lambda: browser.find_elements(By.CSS_SELECTOR, "table tbody a[href*='/admin/tasks/']"),
        60,
        "a failed task run",
    )
    link[0].click()
    original = browser.current_url.rsplit("/", 1)[1]
    assert "FAILURE" in text(browser) and "invalid stage_message payload" in text(browser)
    submit(browser, f"/admin/tasks/{original}/rerun")
    rerun = browser.current_url.rsplit("/", 1)[1]
    assert rerun != original
    assert (
        browser.find_element(By.CSS_SELECTOR, "a.original").get_attribute("href").endswith(original)
    )

    def own_state() -> bool:
        return "FAILURE" in browser.find_element(By.TAG_NAME, "h1").text

    wait_for(browser, own_state, 60, "the re-run's own outcome")
    assert "risk" in text(browser)  # the queue it ran on
    assert "invalid stage_message payload" in text(browser)
    browser.save_screenshot(str(Path(stack.state_dir) / "rerun.png"))

    browser.get(f"{stack.web}/admin/controls")
    submit(browser, "/admin/controls/halt", reason="browser test")
    browser.get(f"{stack.web}/admin/")
    assert "HALTED" in text(browser) and "browser test" in text(browser)
    browser.get(f"{stack.web}/admin/controls")
    submit(browser, "/admin/controls/resume")
    browser.get(f"{stack.web}/admin/")
    assert "HALTED" not in text(browser)
    browser.get(f"{stack.web}/admin/controls")
    assert "admin" in text(browser) and "halt" in text(browser).lower()


# First contact: charts with axes, refresh in place, decisions, settings, paper reset ----------

ISO_TICK = re.compile(r"\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d)?Z)?")


def shot(browser, stack, name: str) -> None:  # type: ignore[no-untyped-def]
    browser.save_screenshot(str(Path(stack.state_dir) / f"{name}.png"))


def logged_in(browser, stack, path: str) -> None:  # type: ignore[no-untyped-def]
    browser.get(f"{stack.web}{path}")
    if "/admin/login" in browser.current_url:
        submit(browser, "/admin/login", username="admin", password=ADMIN_PASSWORD)
        browser.get(f"{stack.web}{path}")


def csp_violations(browser) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


def labels(browser, selector: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, selector)]


def test_charts_have_axes_with_units(stack, browser):
    logged_in(browser, stack, "/admin/")
    wait_for(
        browser,
        lambda: browser.find_elements(By.CSS_SELECTOR, "svg.chart.drawdown text.axis-y"),
        60,
        "the drawdown chart",
    )
    equity_y = labels(browser, "svg.chart.equity text.axis-y")
    equity_x = labels(browser, "svg.chart.equity text.axis-x")
    drawdown_y = labels(browser, "svg.chart.drawdown text.axis-y")
    assert len(equity_y) >= 3 and all(label.endswith(" USDT") for label in equity_y), equity_y
    assert len(equity_x) >= 2 and all(ISO_TICK.fullmatch(x) for x in equity_x), equity_x
    assert all(label.endswith(" %") for label in drawdown_y) and "0 %" in drawdown_y, drawdown_y
    # a paper account that barely moved is not drawn as a cliff: the axis spans >= 1 % of it
    values = [float(label.removesuffix(" USDT").replace(",", "")) for label in equity_y]
    assert max(values) - min(values) >= 0.01 * 1000
    summary = browser.find_element(By.CSS_SELECTOR, ".run-summary a.sentence")
    assert re.search(r"\d+ evaluated: ", summary.text) or "nothing evaluated" in summary.text
    browser.set_window_size(1280, 2600)  # the whole dashboard, every chart
    shot(browser, stack, "dashboard-axes")
    browser.set_window_size(1280, 1600)
    assert csp_violations(browser) == []


def test_pages_refresh_in_place_unless_paused_or_typing(stack, browser):
    logged_in(browser, stack, "/admin/")
    pause_refresh(browser, False)
    browser.refresh()
    status = browser.find_element(By.ID, "refresh-status")
    scrolled = browser.execute_script(
        "window.cdbMarker = 'same page'; window.scrollTo(0, 150); return window.scrollY"
    )
    assert scrolled > 0
    first = status.text
    assert first.startswith("updated ")
    wait_for(browser, lambda: status.text != first, 20, "a refresh in place", reload=False)
    assert browser.execute_script("return window.cdbMarker") == "same page"  # no reload
    assert browser.execute_script("return window.scrollY") == scrolled
    # paused: nothing changes, and the choice follows the user to the next page
    toggle = browser.find_element(By.ID, "refresh-toggle")
    toggle.click()
    assert toggle.text == "Resume auto-refresh" and "paused" in status.text
    time.sleep(7)
    assert "paused" in status.text
    browser.get(f"{stack.web}/admin/orders")
    assert browser.find_element(By.ID, "refresh-toggle").text == "Resume auto-refresh"
    browser.find_element(By.ID, "refresh-toggle").click()
    assert browser.find_element(By.ID, "refresh-toggle").text == "Pause auto-refresh"
    # typing in a form holds the refresh
    browser.get(f"{stack.web}/admin/tasks")
    browser.execute_script("window.cdbMarker = 'typing'")
    box = browser.find_element(By.NAME, "since")
    box.send_keys("2026")
    held = browser.find_element(By.ID, "refresh-status").text
    time.sleep(7)
    assert browser.find_element(By.ID, "refresh-status").text == held
    assert browser.find_element(By.NAME, "since") == box  # the same element, not swapped
    assert csp_violations(browser) == []
    pause_refresh(browser)


def test_why_no_trade(stack, browser):
    logged_in(browser, stack, "/admin/")
    sentence = wait_for(
        browser,
        lambda: [
            a
            for a in browser.find_elements(By.CSS_SELECTOR, ".run-summary a.sentence")
            if "evaluated:" in a.text
        ],
        90,
        "a run the strategy evaluated",
    )[0]
    said = sentence.text
    sentence.click()
    assert re.search(r"/admin/decisions\?run=\d+$", browser.current_url)
    run_id = browser.current_url.rsplit("=", 1)[1]
    assert f"Run #{run_id}" in text(browser) and said in text(browser)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.decisions > tbody > tr")
    # Every symbol of the universe is counted; the fetched, held and would-be trades keep a row.
    assert 0 < len(rows) <= int(said.split()[0].replace(",", ""))
    shot(browser, stack, "decisions-run")

    symbol = rows[0].find_elements(By.TAG_NAME, "td")[1].text
    browser.get(f"{stack.web}/admin/decisions")
    submit(browser, "/admin/decisions", symbol=symbol.lower())
    assert f"symbol={symbol.lower()}" in browser.current_url
    symbols = {
        row.find_elements(By.TAG_NAME, "td")[1].text
        for row in browser.find_elements(By.CSS_SELECTOR, "table.decisions > tbody > tr")
    }
    assert symbols == {symbol}
    numbers = browser.find_element(By.CSS_SELECTOR, "table.decisions details")
    numbers.find_element(By.TAG_NAME, "summary").click()
    assert "entry threshold" in numbers.text and "%" in numbers.text
    shot(browser, stack, "decisions-symbol")

    browser.get(f"{stack.web}/admin/decisions?result=no_signal&outcome=nonsense")
    assert "400" in browser.title and "outcome='nonsense' is not one of" in text(browser)
    assert csp_violations(browser) == []


def test_settings_page(stack, browser):
    logged_in(browser, stack, "/admin/settings")
    page = text(browser)
    assert "State folder" in page and stack.state_dir in page
    row = browser.find_element(By.ID, "ADMIN_PASSWORD").text
    assert "***" in row and ADMIN_PASSWORD not in browser.page_source
    assert "environment" in browser.find_element(By.ID, "TOP_N").text
    assert stack.env["SECRET_KEY"] not in browser.page_source
    shot(browser, stack, "settings")
    assert csp_violations(browser) == []


def test_an_orders_trace_reads_as_tables(stack, browser):
    sim = stack.mexc()
    # the strategy buys within a few cycles, not whenever the seeded market happens to move
    httpx.post(f"{sim}/_sim/scenarios", json={"spec": RALLY}, timeout=10).raise_for_status()
    try:
        logged_in(browser, stack, "/admin/orders")
        link = wait_for(
            browser,
            lambda: browser.find_elements(By.CSS_SELECTOR, "a[href*='/admin/orders/']"),
            90,
            "an order",
        )
    finally:
        httpx.delete(f"{sim}/_sim/scenarios", timeout=10).raise_for_status()  # the only one
    shot(browser, stack, "orders")
    link[0].click()
    assert "Order #" in browser.find_element(By.TAG_NAME, "h1").text
    assert browser.find_elements(By.CSS_SELECTOR, "table.book caption")  # bids and asks
    layers = browser.find_element(By.CSS_SELECTOR, "table.layers").text
    assert "{" not in layers and "Decimal(" not in layers
    assert re.search(r"\d USDT|\d %", layers)
    shot(browser, stack, "trace")
    logged_in(browser, stack, "/admin/positions")
    shot(browser, stack, "positions")
    assert csp_violations(browser) == []


def test_paper_reset_from_the_controls_page(stack, browser):
    logged_in(browser, stack, "/admin/controls")
    before = browser.find_elements(By.CSS_SELECTOR, "table.accounts > tbody > tr")
    submit(browser, "/admin/controls/paper-reset", confirm="RESET", reason="browser test reset")
    assert "/admin/controls" in browser.current_url
    flash = browser.find_element(By.CSS_SELECTOR, "p.flash.ok").text
    assert re.search(r"opened paper-\d+ with 1,000.00 USDT", flash), flash
    accounts = browser.find_elements(By.CSS_SELECTOR, "table.accounts > tbody > tr")
    assert len(accounts) == max(len(before), 1) + (1 if "closed" in flash else 0)
    assert "active" in accounts[0].text
    trail = browser.find_element(By.CSS_SELECTOR, "table.audit > tbody > tr").text
    assert "paper-reset" in trail and "browser test reset" in trail and "admin" in trail
    shot(browser, stack, "controls-reset")
    if len(accounts) > 1:  # the closed account's orders stay viewable
        old = accounts[1].find_element(By.CSS_SELECTOR, "a[href*='/admin/orders?account=']")
        old.click()
        assert "was closed at" in text(browser)
        shot(browser, stack, "orders-closed-account")
    assert csp_violations(browser) == []
