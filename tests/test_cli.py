"""`jxa` through its entry point: output, exit codes and one-line error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


def _about_ip(text: str) -> bool:
    return any(term in text.lower() for term in ("intellectual property", "知识产权", "知識產權", "patent"))


@pytest.fixture
def fake_env(monkeypatch, fake_index_dir):
    monkeypatch.setenv("JXA_LLM", "fake")
    monkeypatch.setenv("JXA_EMBEDDER", "fake-hash")
    monkeypatch.setenv("JXA_SEEDS_DIR", str(SEEDS))
    monkeypatch.setenv("JXA_TODAY", "2026-11-26")
    return ["--index-dir", str(fake_index_dir)]


def test_search_prints_ranked_measures(fake_env, capsys):
    assert main(["search", "intellectual property rights protection", "--k", "3", *fake_env]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln[:2] in ("1.", "2.", "3.")]
    assert len(lines) == 3 and all("#" in ln for ln in lines)
    assert _about_ip(lines[0] + out.splitlines()[1])  # the best hit's label and text


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search_json(fake_env, capsys, mode):
    assert main(["search", "知识产权保护", "--json", "--k", "4", "--mode", mode, *fake_env]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["query"] == "知识产权保护"
    assert [h["rank"] for h in data["hits"]] == [1, 2, 3, 4]
    assert all(set(h) >= {"doc_id", "measure_id", "label", "text", "score"} for h in data["hits"])
    assert _about_ip(data["hits"][0]["label"] + data["hits"][0]["text"])


def test_ask_json(fake_env, capsys):
    assert main(["ask", "How does Jing'an protect intellectual property rights?", "--json", *fake_env]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "generated" and not data["refused"]
    assert data["citations"] and data["citations"][0]["n"] == 1
    assert "[1]" in data["answer"]


def test_ask_json_refusal_in_chinese(fake_env, capsys):
    assert main(["ask", "怎么做巧克力蛋糕？", "--json", *fake_env]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["refused"] and data["language"] == "zh" and "12345" in data["answer"]


def test_ask_text_and_stream(fake_env, capsys):
    question = "How will Jing'an foster future industrial clusters such as the metaverse?"
    assert main(["ask", question, *fake_env]) == 0
    text = capsys.readouterr().out
    assert "[1] Jing'an 2024 Measures" in text and "(EXPIRED)" in text
    assert main(["ask", question, "--stream", *fake_env]) == 0
    streamed = capsys.readouterr().out
    assert streamed.split() == text.split()


def test_ask_with_history_file(fake_env, capsys, tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps([["What support is there for the cross-border flow of data in Jing'an?", "…"]]),
                       encoding="utf-8")
    assert main(["ask", "And what about Zhangjiang?", "--history", str(history), "--json", *fake_env]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "cross-border flow of data" in data["rewritten_query"]


def test_bad_history_file_is_a_one_line_error(fake_env, capsys, tmp_path):
    history = tmp_path / "history.json"
    history.write_text(json.dumps({"user": "x"}), encoding="utf-8")
    assert main(["ask", "What about data?", "--history", str(history), *fake_env]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("jxa: history must be a list") and "\n" not in err


@pytest.mark.parametrize("args, field", [
    (["--top-k", "0"], "top_k"),
    (["--top-k", "many"], "top_k"),
    (["--embedder", "word2vec"], "embedder"),
    (["--llm", "gpt"], "llm"),
    (["--today", "yesterday"], "today"),
])
def test_bad_setting_exits_2_with_one_line(fake_env, capsys, args, field):
    assert main(["search", "patents", *args, *fake_env]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"jxa: invalid setting {field}:") and "\n" not in err


def test_bad_setting_from_the_environment(fake_env, capsys, monkeypatch):
    monkeypatch.setenv("JXA_CANDIDATES", "1")
    assert main(["search", "patents", *fake_env]) == 2
    assert capsys.readouterr().err.startswith("jxa: invalid setting candidates:")


def test_missing_index_exits_1_naming_the_build_command(fake_env, capsys, tmp_path):
    assert main(["search", "patents", "--index-dir", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert "jxa index build" in err and err.startswith("jxa: no index in") and "\n" not in err
    assert main(["ask", "patents?", "--index-dir", str(tmp_path / "nowhere")]) == 1
    assert "jxa index build" in capsys.readouterr().err


def test_index_built_with_another_embedder(fake_env, capsys, monkeypatch):
    monkeypatch.setenv("JXA_EMBEDDER", "fake-hash")
    from conftest import FakeEmbedder

    from assistant.retrieval.embedders import register_embedder

    class Other(FakeEmbedder):
        def __init__(self, arg=""):
            super().__init__()
            self.id = "fake-other:256"

    register_embedder("fake-other", Other)
    assert main(["search", "patents", "--embedder", "fake-other", *fake_env]) == 1
    err = capsys.readouterr().err
    assert "fake-hash:256" in err and "fake-other:256" in err and "jxa index build" in err


def test_index_build_and_status(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("JXA_EMBEDDER", "fake-hash")
    index = tmp_path / "index"
    args = ["--index-dir", str(index), "--seeds-dir", str(SEEDS)]
    assert main(["index", "status", *args]) == 1
    assert "no index" in capsys.readouterr().out
    assert main(["index", "build", *args]) == 0
    assert "152 measures" in capsys.readouterr().out
    assert main(["index", "build", *args]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["index", "status", *args]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["current"] and status["embedder"] == "fake-hash:256"


def test_index_build_bad_seeds_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("JXA_EMBEDDER", "fake-hash")
    code = main(["index", "build", "--index-dir", str(tmp_path / "i"), "--seeds-dir", str(tmp_path / "none")])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err


def test_unknown_command_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fly"])
    assert info.value.code == 2
