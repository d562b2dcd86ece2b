"""The staff library page in a real browser (Debian's chromium through Playwright): sign in, upload a
document in each format, read its preview, publish; for the DOCX, then ask the chat about it.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import SecretStr

from assistant.retrieval.build import build_index
from assistant.web.local_server import LocalServer
from tests.test_browser import STAFF_PASSWORD, _answered, _ask, _bot_messages, _two_sentence_script, browser, open_page

pytestmark = pytest.mark.browser
__all__ = ["browser", "open_page"]  # fixtures used here, defined beside the chat's browser tests

DOCS = Path(__file__).resolve().parent / "documents"


@pytest.fixture
def library_server(tmp_path):
    from assistant.answering.assistant import Assistant
    from assistant.config import Settings
    from assistant.web.app import create_app
    from tests.conftest import FakeEmbedder

    seeds = tmp_path / "library"
    seeds.mkdir()
    shutil.copy(DOCS / "lakeside-articles.txt", seeds / "000_lakeside.txt")
    index = tmp_path / "index"
    build_index(seeds, index, FakeEmbedder())
    settings = Settings(seeds_dir=seeds, index_dir=index, embedder="fake-hash", llm="fake:0.01", ui_language="zh",
                        db_path=tmp_path / "r.db", cache_dir=tmp_path / "cache", today="2026-06-01",
                        rate_limit_per_min=0, staff_password=SecretStr(STAFF_PASSWORD))
    assistant = Assistant.from_settings(settings)
    _two_sentence_script(assistant.llm)
    with LocalServer(create_app(settings, assistant), ready_path=None, timeout_s=10) as server:
        server.settings = settings
        yield server


def test_staff_add_a_docx_and_the_chat_answers_from_it(library_server, open_page, artifacts):
    s = library_server
    page = open_page(s.url + "/insights/library", ready="#password")
    page.fill("#password", STAFF_PASSWORD)
    page.click("#login-submit")
    page.goto(s.url + "/insights/library")
    page.wait_for_selector("#document")
    page.set_input_files("#document", str(DOCS / "qiyun-innovation-vouchers.docx"))
    page.click("#preview")
    preview = page.locator("#library-preview")
    preview.wait_for()
    text = preview.inner_text()
    for shown in ("栖云区科技创新券实施细则", "栖科发〔2026〕7号", "qiyun-2026#II.1.2", "departments: 区科委; 区财政局"):
        assert shown in text
    page.screenshot(path=str(artifacts / "library-preview.png"), full_page=True)
    page.click("#publish")
    page.locator("#library-message").wait_for()
    assert "Published qiyun-2026" in page.locator("#library-message").inner_text()
    page.screenshot(path=str(artifacts / "library-published.png"), full_page=True)
    chat = open_page(s.url + "/")
    _ask(chat, "栖云区的高新技术企业每年可以申领多少创新券？")
    try:
        _answered(chat)
    finally:
        chat.screenshot(path=str(artifacts / "library-answer.png"))
    answer = _bot_messages(chat).last.inner_text()
    assert "50万元" in answer
    chat.screenshot(path=str(artifacts / "library-answer.png"))


@pytest.mark.parametrize("name, shown", [
    ("wanghu-inline.txt", ("望湖区商务委员会关于支持商贸流通企业发展的若干措施", "wanghu-2026#4", "valid until 2029-03-31")),
    ("elmford-exhibitions.md", ("EDCB [2026] No. 7", "elmford-2026#1", "Exhibition subsidies")),
    ("riverside-manufacturing.pdf", ("RDPG [2025] No. 21", "riverside-2025#III.8", "valid until 2028-12-31")),
    ("harbourview-notice.html", ("HDGO [2026] No. 2", "harbourview-2026#II.1", "2,000 talent apartments")),
])
def test_staff_preview_and_publish_each_format(library_server, open_page, artifacts, name, shown):
    page = open_page(library_server.url + "/insights/library", ready="#password")
    page.fill("#password", STAFF_PASSWORD)
    page.click("#login-submit")
    page.goto(library_server.url + "/insights/library")
    page.wait_for_selector("#document")
    page.set_input_files("#document", str(DOCS / name))
    page.click("#preview")
    preview = page.locator("#library-preview")
    preview.wait_for()
    text = preview.inner_text()
    for part in shown:
        assert part in text
    page.screenshot(path=str(artifacts / f"library-preview-{Path(name).suffix[1:]}.png"), full_page=True)
    page.click("#publish")
    page.locator("#library-message").wait_for()
    doc_id = shown[1].split("#")[0]
    assert f"Published {doc_id}" in page.locator("#library-message").inner_text()
    assert doc_id in page.locator("body").inner_text()  # listed among the library's documents
