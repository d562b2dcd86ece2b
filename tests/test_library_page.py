"""The staff page /insights/library: behind the staff password, a preview rendered as text, publishing
switches the running server to the new index, and a removed document is no longer answered from."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from assistant.retrieval.build import build_index

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "tests" / "documents"


@pytest.fixture
def client(tmp_path):
    from assistant.answering.assistant import Assistant
    from assistant.config import Settings
    from assistant.web.app import create_app
    from tests.conftest import FakeEmbedder

    seeds = tmp_path / "library"
    seeds.mkdir()
    shutil.copy(DOCS / "lakeside-articles.txt", seeds / "000_lakeside.txt")
    index = tmp_path / "index"
    build_index(seeds, index, FakeEmbedder())
    settings = Settings(seeds_dir=seeds, index_dir=index, embedder="fake-hash", llm="fake", db_path=tmp_path / "r.db",
                        cache_dir=tmp_path / "cache", today="2026-06-01", staff_password=SecretStr("open sesame"),
                        index_watch_s=0)
    app = create_app(settings, Assistant.from_settings(settings), load_model=False)
    with TestClient(app) as c:
        c.app_ctx = app.state.ctx
        yield c


def _login(c: TestClient) -> None:
    assert c.post("/insights/login", data={"password": "open sesame"}, follow_redirects=False).status_code == 303


def test_library_page_needs_the_password(client):
    r = client.get("/insights/library")
    assert r.status_code == 401 and 'type="password"' in r.text
    r = client.post("/insights/library/preview", files={"document": ("a.txt", b"x", "text/plain")})
    assert r.status_code == 401 and "Preview" not in r.text


def test_preview_publish_answer_remove(client):
    _login(client)
    page = client.get("/insights/library")
    assert page.status_code == 200 and "lakeside-2026" in page.text and "<script" not in page.text
    data = (DOCS / "qiyun-innovation-vouchers.docx").read_bytes()
    r = client.post("/insights/library/preview", files={"document": ("栖云 细则.docx", data, "application/octet-stream")})
    assert r.status_code == 200
    for shown in ("栖科发〔2026〕7号", "qiyun-2026#II.3", "departments: 区科委; 区财政局", "valid until 2028-04-30"):
        assert shown in r.text
    assert client.app_ctx.assistant.retriever.data.documents.keys() == {"lakeside-2026-cf3a4d"}  # nothing yet
    token = r.text.split("name='token' value='")[1].split("'")[0]
    r = client.post("/insights/library/publish", data={"token": token})
    assert r.status_code == 200 and "Published qiyun-2026" in r.text
    assert "qiyun-2026" in client.app_ctx.assistant.retriever.data.documents  # the running server switched
    answer = client.post("/api/ask", json={"question": "栖云区高新技术企业每年可以申领多少创新券？"}).json()
    assert any(c["doc_id"] == "qiyun-2026" for c in answer["citations"] + answer["related"])
    assert client.post("/insights/library/publish", data={"token": token}).status_code == 400  # used up
    r = client.post("/insights/library/remove", data={"doc_id": "qiyun-2026"})
    assert r.status_code == 200 and "Removed qiyun-2026" in r.text
    assert "qiyun-2026" not in client.app_ctx.assistant.retriever.data.documents


def test_the_preview_shows_document_text_as_text_and_bad_files_change_nothing(client, tmp_path):
    _login(client)
    hostile = ("Measures of Lakeside District on Night Markets\nI. Support\n"
               "1. Stalls. <img src=x onerror=alert(1)> Stall rent is waived for RMB 3,000 a month.\n")
    r = client.post("/insights/library/preview", files={"document": ("x.txt", hostile.encode(), "text/plain")})
    assert r.status_code == 200
    assert "<img" not in r.text and "&lt;img src=x onerror=alert(1)&gt;" in r.text
    before = sorted(p.name for p in client.app_ctx.settings.seeds_dir.iterdir())
    for name, content, message in [("n.txt", (DOCS / "no-structure.txt").read_bytes(), "no numbered headings"),
                                   ("n.exe", b"MZ", "Unsupported format .exe"),
                                   ("n.pdf", b"%PDF-1.4 junk", "could not be read as PDF")]:
        r = client.post("/insights/library/preview", files={"document": (name, content, "application/octet-stream")})
        assert r.status_code == 400 and message in r.text
    assert sorted(p.name for p in client.app_ctx.settings.seeds_dir.iterdir()) == before
    assert client.post("/insights/library/publish", data={"token": "../../etc"}).status_code == 400


def test_a_running_server_follows_a_cli_change_without_dropping_a_question(client, monkeypatch):
    import threading

    from assistant.cli import main

    ctx = client.app_ctx
    monkeypatch.setenv("JXA_EMBEDDER", "fake-hash")
    monkeypatch.setenv("JXA_LLM", "fake")  # it translates the new document's measures after publishing
    monkeypatch.setenv("JXA_SEEDS_DIR", str(ctx.settings.seeds_dir))
    monkeypatch.setenv("JXA_INDEX_DIR", str(ctx.settings.index_dir))
    ctx.assistant.llm.delay_s = 0.05  # a question long enough to be in flight during the switch
    job = ctx.worker.submit("What subsidy is there for rooftop solar power in Lakeside?", [])
    assert main(["docs", "add", str(DOCS / "harbourview-notice.html")]) == 0
    switched = threading.Thread(target=client.app.state.index_watcher.check)
    switched.start()
    answer = job.result()
    switched.join(timeout=60)
    assert answer.citations and answer.citations[0].document.doc_id == "lakeside-2026-cf3a4d"
    assert "harbourview-2026" in ctx.assistant.retriever.data.documents
    assert ctx.worker.assistant is ctx.assistant
    assert client.app.state.index_watcher.check() is False  # nothing changed since
