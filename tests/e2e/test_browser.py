"""A person in headless Chromium: log in, see the equity chart, re-run a failed task, halt
and resume trading. Uses Debian's chromium and chromedriver (nothing is downloaded)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

import celeryconfig
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
    submit(browser, "/admin/login", username="admin", password=ADMIN_PASSWORD)
    assert "Dashboard" in text(browser)

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

    wait_for(browser, own_state, 60, "the re-run's own outcome", reload=False)
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
