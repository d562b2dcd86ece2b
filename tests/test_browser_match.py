"""The policy health check in a real browser (Debian's chromium through Playwright): the form under the
chat and on the kiosk, the grouped result, a measure opened, the report downloaded. The page shows
what `POST /api/match` returns for the same profile. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import urllib.request

import pytest

from assistant.records import Records
from tests import test_browser as shared
from tests.test_browser import DESK, KIOSK

# The chat's browser tests' own fixtures: one chromium, one server factory, the same offline check.
browser, open_page, served = shared.browser, shared.open_page, shared.served

pytestmark = pytest.mark.browser

PROFILE = {"district": "Xuhui", "industry": "AI software", "employees": 30, "founded_year": 2024,
           "qualifications": [], "needs": "office space and financing"}


def _api(url: str, profile: dict) -> dict:
    req = urllib.request.Request(url.rstrip("/") + "/api/match", data=json.dumps(profile).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _fill(page, profile: dict) -> None:
    page.click("#jxa-match button, #jxa-match .label-wrap")  # open the section
    page.locator("#jxa-match-district input").fill(profile["district"])
    page.keyboard.press("Enter")
    page.fill("#jxa-match-industry textarea, #jxa-match-industry input", profile["industry"])
    page.fill("#jxa-match-employees input", str(profile["employees"]))
    page.fill("#jxa-match-founded input", str(profile["founded_year"]))
    page.locator("#jxa-match-quals label").last.click()  # "None of these": qualifications known, none held
    page.fill("#jxa-match-needs textarea", profile["needs"])
    page.click("#jxa-match-run")
    page.locator("#jxa-match-result").wait_for(timeout=20_000)


def test_a_self_description_in_the_chat_fills_the_form(served, open_page):
    s = served()
    page = open_page(s.url)
    page.fill("#jxa-input textarea", "We are a 30-person AI start-up in Xuhui, two years old, looking for space "
                                     "and financing")
    page.keyboard.press("Enter")
    page.locator("#jxa-match-employees input").wait_for(timeout=10_000)
    page.wait_for_function("() => document.querySelector('#jxa-match-employees input').value === '30'",
                           timeout=10_000)
    assert page.locator("#jxa-match-district input").input_value() == "Xuhui"
    assert "financing" in page.locator("#jxa-match-needs textarea").input_value()
    page.click("#jxa-match-run")
    page.locator("#jxa-match-result").wait_for(timeout=20_000)
    assert _grouped(page)["applies"]


def _grouped(page) -> dict[str, list[str]]:
    out = {}
    for level in ("applies", "may_apply", "does_not_apply"):
        group = page.locator(f"#jxa-match-{level}")
        out[level] = group.locator(".jxa-match-item").evaluate_all(
            "els => els.map(e => e.dataset.measureId)")
        out[level + "_count"] = int(group.get_attribute("data-count"))
    return out


def _check_against_api(page, url: str) -> None:
    shown = _grouped(page)
    api = _api(url, PROFILE)
    by_level = {lv: [r["measure_id"] for r in api["results"] if r["level"] == lv]
                for lv in ("applies", "may_apply", "does_not_apply")}
    assert shown["applies"] == by_level["applies"] and shown["applies"]
    assert shown["may_apply"] == by_level["may_apply"]
    assert shown["does_not_apply_count"] == len(by_level["does_not_apply"])
    first = api["results"][0]
    assert first["level"] == "applies" and first["conditions"]
    assert all(c["met"] is True for c in first["conditions"])


def test_health_check_in_the_chat(served, open_page, browser, artifacts, tmp_path):
    s = served()
    page = open_page(s.url)
    _fill(page, PROFILE)
    _check_against_api(page, s.url)
    page.screenshot(path=str(artifacts / "health-check.png"), full_page=True)

    item = page.locator("#jxa-match-applies .jxa-match-item").first
    item.locator("summary").click()
    text = item.locator(".jxa-measure").inner_text()
    mid = item.get_attribute("data-measure-id")
    assert s.assistant.retriever.data.measures[mid].text[:40] in text
    assert item.locator("q").first.is_visible()  # the condition's quote from the measure
    page.screenshot(path=str(artifacts / "health-check-citation.png"), full_page=True)

    with page.expect_download(timeout=20_000) as dl:
        page.click("#jxa-match-download")
    path = tmp_path / "report.html"
    dl.value.save_as(path)
    report = path.read_text(encoding="utf-8")
    assert "Policy health check" in report and mid in report
    assert s.settings.effective_today().isoformat() in report
    report_page = browser.new_page(viewport=DESK)
    report_page.goto(path.as_uri())
    report_page.screenshot(path=str(artifacts / "health-check-report.png"), full_page=True)
    report_page.close()
    # Recorded like a question.
    rows = list(Records(s.settings.db_path).iter())
    assert any(r.mode == "health_check" and "Xuhui" in r.question for r in rows)


def test_kiosk_forgets_the_health_check_when_idle(served, open_page):
    s = served(kiosk=True, kiosk_idle_s=3)
    page = open_page(s.url, viewport=KIOSK)
    _fill(page, PROFILE)
    page.wait_for_function("() => !document.querySelector('#jxa-match-result')", timeout=15_000)
    page.click("#jxa-match button, #jxa-match .label-wrap")
    assert page.locator("#jxa-match-industry textarea, #jxa-match-industry input").input_value() == ""
    assert page.locator("#jxa-match-qr svg").count() == 0


def test_health_check_on_the_kiosk_shows_a_qr_code(served, open_page, artifacts):
    s = served(kiosk=True)
    page = open_page(s.url, viewport=KIOSK)
    _fill(page, PROFILE)
    _check_against_api(page, s.url)
    qr = page.locator("#jxa-match-qr svg")
    qr.wait_for(timeout=10_000)
    page.locator("#jxa-match-qr").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "health-check-kiosk.png"), full_page=True)
    # The QR code's link opens the same report.
    link = page.locator("#jxa-match-qr .jxa-qr").get_attribute("data-url")
    with urllib.request.urlopen(link, timeout=30) as r:
        report = r.read().decode("utf-8")
    assert "Policy health check" in report and _grouped(page)["applies"][0] in report
    req = urllib.request.Request(s.url.rstrip("/") + "/api/match/report?format=pdf", data=json.dumps(PROFILE).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.headers["Content-Type"] == "application/pdf" and r.read(5) == b"%PDF-"
    stored = [r for r in Records(s.settings.db_path).iter() if r.mode == "health_check"]
    assert {"kiosk", "api"} <= {r.channel for r in stored}, [(r.id, r.channel) for r in stored]
