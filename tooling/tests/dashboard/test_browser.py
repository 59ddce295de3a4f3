"""The dashboard in a real headless Chromium: served over loopback HTTP and opened from file://.

Screenshots of each page kind land in ``$MODELCTL_TEST_ARTIFACTS/dashboard`` (else a pytest temp folder).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag

import pytest

from modelctl.dashboard import build
from tests.dashboard import browser
from tests.dashboard.conftest import HOSTILE, Scenario

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    problem = browser.missing_message()
    if problem:
        (pytest.fail if browser.IN_CI else pytest.skip)(problem)
    with browser.chromium() as started:
        yield started


@pytest.fixture(scope="module")
def site(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "site"
    build(scenario.repo, out, state=scenario.state)
    return out


@pytest.fixture(scope="module")
def base(site: Path) -> Iterator[str]:
    with browser.serve(site) as url:
        yield url


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("MODELCTL_TEST_ARTIFACTS")
    folder = Path(configured) / "dashboard" if configured else tmp_path_factory.mktemp("artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(driver: Any, url: str) -> None:
    driver.get(url)
    browser.severe_console_errors(driver)  # the log is per session: start each page from an empty one


def visible_models(driver: Any) -> list[str]:
    rows = driver.find_elements("css selector", "#models tbody tr")
    return [row.get_attribute("data-model") for row in rows if row.is_displayed()]


def wait_for_charts(driver: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.charts") == "rendered")


def test_the_overview_lists_every_model_with_headings_and_table_headers(
    driver: Any, base: str, scenario: Scenario, artifacts: Path
) -> None:
    open_page(driver, base + "index.html")
    assert sorted(visible_models(driver)) == sorted(scenario.models)
    assert driver.find_element("css selector", "h1").text == "Models"
    headers = [th.text for th in driver.find_elements("css selector", "#models thead th")]
    assert headers[:7] == ["Model", "Owner", "Framework", "Task", "Input", "Staging", "Production"]
    assert len(driver.find_elements("css selector", "#models tbody th[scope=row]")) == len(scenario.models)
    iris = driver.find_element("css selector", 'tr[data-model="iris_classifier"]').text
    assert "v3 iris_classifier:ccc" in iris and "P90 110 ms" in iris
    never = driver.find_element("css selector", 'tr[data-model="fraud_scorer"]').text
    assert "not deployed" in never and "never deployed" in never
    driver.save_screenshot(str(artifacts / "overview.png"))
    assert browser.severe_console_errors(driver) == []


def test_filtering_and_the_attention_view(driver: Any, base: str, scenario: Scenario, artifacts: Path) -> None:
    open_page(driver, base + "index.html")
    box = driver.find_element("id", "filter")
    box.send_keys("xgboost")
    assert visible_models(driver) == ["fraud_scorer"]
    assert driver.find_element("id", "shown").text == f"1 of {len(scenario.models)} models shown"
    box.clear()
    box.send_keys("growth lightgbm")
    assert visible_models(driver) == ["churn_model"]
    box.clear()
    box.send_keys(" ")  # clear() fires no input event: a keystroke does
    assert len(visible_models(driver)) == len(scenario.models)
    driver.find_element("id", "attention-only").click()
    needing = sorted(visible_models(driver))
    assert needing == sorted(set(scenario.models) - {"iris_classifier"})

    open_page(driver, base + "attention.html")
    listed = [row.get_attribute("data-model") for row in driver.find_elements("css selector", "#attention tbody tr")]
    assert sorted(listed) == needing
    churn = driver.find_element("css selector", 'tr[data-model="churn_model"]').text
    assert "last deploy to staging failed: P90 latency 900 ms exceeds" in churn
    driver.save_screenshot(str(artifacts / "attention.png"))
    assert browser.severe_console_errors(driver) == []


def test_the_overview_is_usable_with_the_keyboard(driver: Any, base: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    open_page(driver, base + "index.html")
    reached = []
    for _ in range(10):  # from the top of the page: the nav links, then the filter
        ActionChains(driver).send_keys(Keys.TAB).perform()
        active = driver.switch_to.active_element
        reached.append(active.get_attribute("id") or active.text)
        if active.get_attribute("id") == "filter":
            break
    assert reached[-1] == "filter", reached
    driver.switch_to.active_element.send_keys("rolled")
    assert visible_models(driver) == ["rolled_model"]
    driver.switch_to.active_element.send_keys(Keys.BACK_SPACE * 6)
    sorters = driver.find_elements("css selector", "#models thead th > button")
    assert [b.tag_name for b in sorters] == ["button"] * len(sorters) and len(sorters) >= 10
    for _ in range(6):  # on through the checkbox to the first sortable header
        ActionChains(driver).send_keys(Keys.TAB).perform()
        if driver.switch_to.active_element.text == "Model":
            break
    assert driver.switch_to.active_element.text == "Model"
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    header = driver.find_element("css selector", "#models thead th")
    assert header.get_attribute("aria-sort") == "descending"
    assert visible_models(driver)[0] == "rolled_model"
    owner = driver.find_element("css selector", '#models thead button[data-column="1"]')
    owner.send_keys(Keys.SPACE)
    assert visible_models(driver)[0] == "gone_model", "a model without an owner sorts first"
    assert browser.severe_console_errors(driver) == []


def test_charts_draw_every_point_of_the_data(driver: Any, base: str, scenario: Scenario, artifacts: Path) -> None:
    open_page(driver, base + "models/iris_classifier.html")
    wait_for_charts(driver)
    for chart_id, points in scenario.gate_points.items():
        drawn = driver.execute_script(
            "return document.querySelectorAll(arguments[0]).length",
            f"#{chart_id} svg.main-svg .scatterlayer path.point",
        )
        assert drawn == points, chart_id
    ledger_rows = driver.find_elements("css selector", "#ledger tbody tr")
    assert len(ledger_rows) == 5 and ledger_rows[0].text.startswith("production v2 deployed iris_classifier:ccc")
    assert [h.text for h in driver.find_elements("css selector", "h2")][:4] == [
        "Environments", "Charts", "Release ledger", "Retrain history"
    ]  # fmt: skip
    driver.save_screenshot(str(artifacts / "model.png"))
    assert browser.severe_console_errors(driver) == []


def test_every_link_resolves(driver: Any, base: str, site: Path) -> None:
    pages, seen, checked = [base + "index.html"], set(), 0
    while pages:
        page = pages.pop()
        if page in seen:
            continue
        seen.add(page)
        open_page(driver, page)
        if "/models/" in page and driver.find_elements("css selector", "script.chart-spec"):
            wait_for_charts(driver)
        targets = [e.get_attribute("href") for e in driver.find_elements("css selector", "a[href], link[href]")]
        targets += [e.get_attribute("src") for e in driver.find_elements("css selector", "script[src]")]
        assert browser.severe_console_errors(driver) == [], page
        for target in targets:
            url = urldefrag(target).url
            if not url.startswith(base):
                continue
            try:
                with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own loopback server
                    assert response.status == 200, url
            except urllib.error.HTTPError as exc:
                pytest.fail(f"{page} links to {url}: HTTP {exc.code}")
            checked += 1
            if url.endswith(".html") and "/reports/" not in url:
                pages.append(url)
    assert len(seen) == 2 + len(list((site / "models").glob("*.html")))
    assert checked > 50


def test_the_report_link_opens_the_copied_report(driver: Any, base: str, scenario: Scenario) -> None:
    open_page(driver, base + "models/iris_classifier.html")
    link = driver.find_element("link text", "load test")
    assert link.get_attribute("href") == base + scenario.report_href
    link.click()
    assert driver.find_element("css selector", "h1").text == "Load test"


def test_markup_in_a_description_is_shown_not_run(driver: Any, base: str) -> None:
    for page in ("index.html", "attention.html", "models/fraud_scorer.html"):
        open_page(driver, base + page)
        assert driver.execute_script("return window.__pwned === undefined"), page
        assert not driver.find_elements("css selector", "main b"), page
    assert driver.find_element("css selector", ".description").text == HOSTILE


def test_the_site_opens_from_a_file(driver: Any, site: Path) -> None:
    open_page(driver, (site / "index.html").as_uri())
    driver.find_element("link text", "iris_classifier").click()
    wait_for_charts(driver)
    assert driver.current_url == (site / "models" / "iris_classifier.html").as_uri()
    assert driver.execute_script("return document.querySelectorAll('#chart-p90 path.point').length") == 5
    assert browser.severe_console_errors(driver) == []
