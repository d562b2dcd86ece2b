"""`jxa bench http`: answers measured as a client gets them, through `POST /api/ask` and the SSE stream
of `/v1/chat/completions` of a real `jxa serve` on loopback, against the plain baseline pipeline
answering the same questions in the same run.

Each question is asked on both channels (the order alternating, so neither always finds the other's
prefix state warm). Reported: full answer p50/p90 on each channel, first visible text on the stream
(the first non-empty content delta), the share of answered questions that are generated rather than
quoted, and every question whose streamed text differs from the returned one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from . import metrics as M
from .dataset import DEFAULT_SUITE, EvalItem, load_items

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Asked:
    """One question on both channels."""

    id: str
    api_s: float
    sse_first_s: float | None  # None: the stream carried no text
    sse_s: float
    mode: str  # the returned answer's: "generated", "extractive" or "refusal"
    same: bool  # streamed text == returned text
    api_text: str = ""
    sse_text: str = ""


@dataclass
class HttpBench:
    asked: list[Asked] = field(default_factory=list)
    baseline_first_s: list[float] = field(default_factory=list)
    baseline_s: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        def p(values, q):
            v = M.percentile(values, q)
            return None if v is None else round(v, 2)

        api = [a.api_s for a in self.asked]
        sse = [a.sse_s for a in self.asked]
        first = [a.sse_first_s for a in self.asked if a.sse_first_s is not None]
        answered = [a for a in self.asked if a.mode != "refusal"]
        generated = sum(a.mode == "generated" for a in answered)
        return {
            "questions": len(self.asked),
            "api_full_s": {"p50": p(api, 0.5), "p90": p(api, 0.9)},
            "sse_full_s": {"p50": p(sse, 0.5), "p90": p(sse, 0.9)},
            "sse_first_text_s": {"p50": p(first, 0.5), "p90": p(first, 0.9)},
            "answered": len(answered),
            "generated_share": round(generated / len(answered), 3) if answered else None,
            "streamed_differs": [a.id for a in self.asked if not a.same],
            "baseline": {"questions": len(self.baseline_s),
                         "first_token_s": {"p50": p(self.baseline_first_s, 0.5), "p90": p(self.baseline_first_s, 0.9)},
                         "full_s": {"p50": p(self.baseline_s, 0.5), "p90": p(self.baseline_s, 0.9)}},
        }


def bench_items(path: Path, n: int | None, split: str | None) -> list[EvalItem]:
    """The main suite's items (a split's, when given), English and Chinese alternating; the first n."""
    items = [i for i in load_items(path) if i.suite == DEFAULT_SUITE and (split is None or i.split == split)]
    en = [i for i in items if i.language == "en"]
    zh = [i for i in items if i.language != "en"]
    mixed = [x for pair in zip(en, zh, strict=False) for x in pair]
    longer = en if len(en) > len(zh) else zh
    mixed += longer[min(len(en), len(zh)):]
    return mixed if n is None else mixed[:n]


def _messages(item: EvalItem) -> list[dict]:
    out = []
    for user, assistant in item.history:
        out += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return out + [{"role": "user", "content": item.question}]


def _ask_api(client, item: EvalItem) -> tuple[float, str, str]:
    t = time.perf_counter()
    r = client.post("/api/ask", json={"question": item.question, "history": [list(h) for h in item.history]})
    elapsed = time.perf_counter() - t
    r.raise_for_status()
    body = r.json()
    return elapsed, body["answer"], body.get("mode", "")


def _ask_sse(client, item: EvalItem) -> tuple[float | None, float, str]:
    t = time.perf_counter()
    first = None
    parts: list[str] = []
    with client.stream("POST", "/v1/chat/completions",
                       json={"model": "jxa", "stream": True, "messages": _messages(item)}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[len("data: "):])
            if "error" in chunk:
                raise RuntimeError(f"{item.id}: the stream ended in an error: {chunk['error']}")
            text = chunk["choices"][0]["delta"].get("content") or ""
            if text and first is None:
                first = time.perf_counter() - t
            parts.append(text)
    return first, time.perf_counter() - t, "".join(parts)


def _serve(settings: Settings, work: Path, port: int) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("JXA_")},
           "JXA_HOST": "127.0.0.1", "JXA_PORT": str(port), "JXA_DB_PATH": str(work / "records.sqlite3"),
           "JXA_INDEX_DIR": str(settings.index_dir.resolve()), "JXA_SEEDS_DIR": str(settings.seeds_dir.resolve()),
           "JXA_CACHE_DIR": str(settings.cache_dir.resolve()), "JXA_LLM": settings.llm,
           "JXA_LLM_THREADS": str(settings.llm_threads), "JXA_LLM_TEMPERATURE": str(settings.llm_temperature),
           "JXA_PREFIX_STATES": str(settings.prefix_states).lower(),
           "JXA_RATE_LIMIT_PER_MIN": "0", "JXA_LLM_TIMEOUT_S": str(max(settings.llm_timeout_s, 300.0))}
    if settings.llm_model is not None:
        env["JXA_LLM_MODEL"] = str(settings.llm_model.resolve())
    log = open(work / "serve.log", "wb")
    try:
        return subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=ROOT)
    finally:
        log.close()


def run(settings: Settings, items: list[EvalItem], *, baseline: bool = True, progress=None) -> HttpBench:
    import httpx

    from ..serving.postgres import free_port
    from .scaleout import wait_http

    result = HttpBench()
    with tempfile.TemporaryDirectory(prefix="jxa-http-bench-") as tmp:
        work = Path(tmp)
        port = free_port()
        proc = _serve(settings, work, port)
        try:
            wait_http(f"http://127.0.0.1:{port}/readyz", 300, proc)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(600, connect=5)) as client:
                for n, item in enumerate(items, 1):
                    if n % 2:
                        api_s, api_text, mode = _ask_api(client, item)
                        first, sse_s, sse_text = _ask_sse(client, item)
                    else:
                        first, sse_s, sse_text = _ask_sse(client, item)
                        api_s, api_text, mode = _ask_api(client, item)
                    result.asked.append(Asked(item.id, api_s, first, sse_s, mode, api_text == sse_text,
                                              api_text, sse_text))
                    if progress:
                        progress(n, len(items))
        except Exception:
            log = (work / "serve.log").read_text(encoding="utf-8", errors="replace")[-2000:]
            print(f"jxa serve's log, last lines:\n{log}", file=sys.stderr)
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if baseline:  # after the server has stopped: one model on the cores at a time
        _baseline(settings, items, result)
    return result


def _baseline(settings: Settings, items: list[EvalItem], result: HttpBench) -> None:
    from ..answering.assistant import Assistant
    from ..retrieval.embedders import get_embedder
    from .baseline import PlainPipeline

    embedder = get_embedder(settings.embedder)
    assistant = Assistant.from_settings(settings, embedder=embedder)
    plain = PlainPipeline.for_library(settings, assistant.retriever.data.measures.values(), embedder)
    llm = assistant.llm
    for item in items:
        question = item.question if not item.history else f"{item.history[-1][0]}\n{item.question}"
        t0 = time.perf_counter()
        first = None
        messages = plain.messages(item.question, plain.retrieve(question))
        for _ in llm.stream(messages, max_tokens=settings.llm_max_tokens, temperature=settings.llm_temperature,
                            timeout_s=settings.llm_timeout_s):
            first = first or time.perf_counter()
        end = time.perf_counter()
        result.baseline_first_s.append((first or end) - t0)
        result.baseline_s.append(end - t0)


def format_summary(s: dict) -> str:
    def f(x):
        return "–" if x is None else f"{x:.2f} s"

    b = s["baseline"]
    lines = [
        f"{s['questions']} questions, each through POST /api/ask and the SSE stream of /v1/chat/completions",
        f"{'':28} {'p50':>9} {'p90':>9}",
        f"{'full answer, /api/ask':28} {f(s['api_full_s']['p50']):>9} {f(s['api_full_s']['p90']):>9}",
        f"{'full answer, SSE':28} {f(s['sse_full_s']['p50']):>9} {f(s['sse_full_s']['p90']):>9}",
        f"{'first visible text, SSE':28} {f(s['sse_first_text_s']['p50']):>9} {f(s['sse_first_text_s']['p90']):>9}",
    ]
    if b["questions"]:
        lines += [
            f"{'baseline first token':28} {f(b['first_token_s']['p50']):>9} {f(b['first_token_s']['p90']):>9}",
            f"{'baseline full answer':28} {f(b['full_s']['p50']):>9} {f(b['full_s']['p90']):>9}",
        ]
    share = s["generated_share"]
    lines.append(f"generated answers: {'–' if share is None else f'{share:.2f}'} of {s['answered']} answered")
    differs = s["streamed_differs"]
    lines.append("streamed and returned text identical for every question" if not differs
                 else f"streamed text differs from the returned one for {len(differs)}: {', '.join(differs)}")
    return "\n".join(lines)
