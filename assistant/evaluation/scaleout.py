"""`jxa bench server` and `jxa bench loadtest`: the scaled-out deployment measured on this machine.

`server`: answer latency and throughput through the shared model server (llama_cpp.server) with 1,
2 and 4 slots, against the in-process model in the same run. llama_cpp.server runs one request at a
time per model, so a slot here is a server process (the CPU threads divided between them), and the
replicas' clients are spread over the slots.

`loadtest`: the reference deployment (deploy/) on loopback: PostgreSQL, the model server, two app
replicas (`jxa serve`) and nginx with deploy/nginx.conf; simulated kiosks ask their questions
through nginx, one replica is SIGKILLed half-way, and the run reports whether every question was
answered (after retries), whether any acknowledged record is missing from PostgreSQL, and what the
insights count.
"""

from __future__ import annotations

import gc
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings
from . import metrics as M

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    """One configuration's answers: per-question latency (s) and the wall time for all of them."""

    label: str
    latencies: tuple[float, ...]
    wall_s: float
    modes: tuple[str, ...]

    @property
    def per_min(self) -> float:
        return 60 * len(self.latencies) / self.wall_s if self.wall_s else 0.0

    @property
    def p50(self) -> float:
        return M.percentile(list(self.latencies), 0.5)

    @property
    def p95(self) -> float:
        return M.percentile(list(self.latencies), 0.95)


def bench_questions(settings: Settings, n: int, *, answerable: bool | None = True, history: bool = False
                    ) -> list[tuple[str, list[tuple[str, str]]]]:
    """The first n questions of the evaluation set, English and Chinese alternating."""
    from .dataset import load_items

    items = [i for i in load_items(ROOT / "eval" / "questions.jsonl")
             if (answerable is None or i.answerable == answerable) and (history or not i.history)]
    en = [i for i in items if i.language == "en"]
    zh = [i for i in items if i.language != "en"]
    mixed = [x for pair in zip(en, zh, strict=False) for x in pair]
    return [(i.question, [tuple(h) for h in i.history]) for i in mixed[:n]]


def _answer_all(assistants, questions, label: str) -> Run:
    """Each assistant is one client; they take questions from one queue until it is empty."""
    todo: queue.Queue = queue.Queue()
    for q in questions:
        todo.put(q)
    latencies: list[float] = []
    modes: list[str] = []
    guard = threading.Lock()
    errors: list[BaseException] = []

    def client(assistant) -> None:
        while True:
            try:
                question, history = todo.get_nowait()
            except queue.Empty:
                return
            t = time.perf_counter()
            try:
                answer = assistant.ask(question, history)
            except BaseException as exc:  # reported after the run
                errors.append(exc)
                return
            with guard:
                latencies.append(time.perf_counter() - t)
                modes.append(answer.mode)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(a,)) for a in assistants]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return Run(label, tuple(latencies), time.perf_counter() - t0, tuple(modes))


def bench_server(settings: Settings, n: int = 8, work: Path | None = None) -> list[Run]:
    """In-process first (alone on the cores), then the model server with 1, 2 and 4 slots."""
    from ..answering.assistant import Assistant
    from ..answering.llamacpp import GGUFVocab, LlamaCppLLM
    from ..answering.llm import OpenAICompatLLM
    from ..provision import resolve_llm_model
    from ..retrieval import open_retriever
    from ..serving.model_server import ModelServer
    from ..serving.postgres import free_port

    work = work or Path(tempfile.mkdtemp(prefix="jxa-bench-"))
    gguf = resolve_llm_model(settings.llm_model, settings.models_dir)
    cores = settings.llm_threads
    plain = settings.model_copy(update={"prefix_states": False})
    retriever = open_retriever(plain)
    questions = bench_questions(plain, n)
    runs: list[Run] = []
    print(f"{len(questions)} questions (answerable, English and Chinese alternating), {cores} CPU threads; "
          f"no stored prefix states anywhere (the server keeps prompt states in RAM instead)", flush=True)

    local = LlamaCppLLM(gguf, n_ctx=plain.llm_ctx, n_threads=cores)
    assistant = Assistant(plain, retriever, local)
    assistant.sentences.prepare()
    assistant.ask(*questions[-1])  # the system prompt is in the context, as after any first question
    runs.append(_answer_all([assistant], questions, "in-process, 1 client"))
    _report(runs[-1], runs[0])
    del assistant, local
    gc.collect()

    for slots, clients in ((1, 1), (1, 4), (2, 4), (4, 4)):
        threads = max(1, cores // slots)
        servers = [ModelServer.start(gguf, port=free_port(), log_path=work / f"model-{slots}-{i}.log",
                                     n_ctx=plain.llm_ctx, n_threads=threads) for i in range(slots)]
        try:
            assistants = [Assistant(plain, retriever, OpenAICompatLLM(servers[c % slots].url, vocab=GGUFVocab(gguf)))
                          for c in range(clients)]
            for a in assistants:
                a.sentences.prepare()
            for a in assistants[:slots]:  # each server holds the system prompt, as in service
                a.ask(*questions[-1])
            label = f"server, {slots} slot{'s' if slots > 1 else ''} x {threads} thread{'s' if threads > 1 else ''}, " \
                    f"{clients} client{'s' if clients > 1 else ''}"
            runs.append(_answer_all(assistants, questions, label))
            _report(runs[-1], runs[0])
        finally:
            for s in servers:
                s.stop()
    return runs


def _report(run: Run, base: Run) -> None:
    print(f"  {run.label:44} {len(run.latencies):3d} answers in {run.wall_s:6.1f} s: {run.per_min:5.2f}/min "
          f"(x{run.per_min / base.per_min:.2f}), latency p50 {run.p50:5.2f} s (x{run.p50 / base.p50:.2f}) "
          f"p95 {run.p95:5.2f} s; modes {dict(sorted(_count(run.modes).items()))}", flush=True)


def _count(xs) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in xs:
        out[x] = out.get(x, 0) + 1
    return out


# ---------------------------------------------------------------- the load test
def render_nginx(conf: Path, *, listen: int, replicas: list[int], folder: Path) -> Path:
    """deploy/nginx.conf with loopback replica ports, its own port, and its files under `folder`."""
    text = conf.read_text()
    for i, port in enumerate(replicas, start=1):
        text = text.replace(f"app{i}:7860", f"127.0.0.1:{port}")
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{listen};").replace("/tmp/nginx", str(folder / "nginx"))
    text = text.replace("error_log /dev/stderr warn;", f"error_log {folder / 'nginx-error.log'} warn;")
    out = folder / "nginx.conf"
    out.write_text(text)
    return out


@dataclass
class Kiosk:
    """One simulated kiosk: its session, its questions, what it saw."""

    name: str
    questions: list[tuple[str, list[tuple[str, str]]]]
    acknowledged: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    retries: int = 0
    busy: int = 0  # 503 answers with Retry-After
    limited: int = 0  # 429 answers (this kiosk's own rate limit)
    asked: int = 0
    failed: list[str] = field(default_factory=list)


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} was not ready within {timeout_s:.0f} s")


def load_test(settings: Settings, *, kiosks: int = 10, questions: int = 100, kill_at: float = 0.5,
              budget_s: float = 720.0, work: Path | None = None) -> dict:
    """After `budget_s` of asking, kiosks ask no new question (they finish the one in hand), so a run
    on a busy machine stays within its time; the result says how many were asked."""
    import httpx

    from ..insights import compute
    from ..provision import resolve_llm_model
    from ..records_postgres import PostgresRecords
    from ..serving.model_server import ModelServer
    from ..serving.postgres import TemporaryPostgres, free_port

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise RuntimeError("nginx is not installed: apt-get install nginx-light")
    work = work or Path(tempfile.mkdtemp(prefix="jxa-loadtest-"))
    gguf = resolve_llm_model(settings.llm_model, settings.models_dir)
    pool = bench_questions(settings, questions, answerable=None)
    per = [pool[i::kiosks] for i in range(kiosks)]
    stations = [Kiosk(f"kiosk-{i:02d}-{secrets.token_hex(4)}", qs) for i, qs in enumerate(per)]
    # Each kiosk is limited as itself (its token), not as the one address nginx connects from.
    tokens = {k.name: secrets.token_urlsafe(18) for k in stations}
    procs: list[subprocess.Popen] = []
    pg = TemporaryPostgres.start()
    model = None
    try:
        db_url = pg.create_database("jxa")
        model = ModelServer.start(gguf, port=free_port(), log_path=work / "model-server.log",
                                  n_ctx=settings.llm_ctx, n_threads=settings.llm_threads)
        ports = [free_port(), free_port()]
        password = secrets.token_urlsafe(12)
        for i, port in enumerate(ports):
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("JXA_")},
                   "JXA_LLM": f"openai:{model.url}", "JXA_DB_URL": db_url, "JXA_HOST": "127.0.0.1",
                   "JXA_PORT": str(port), "JXA_INDEX_DIR": str(settings.index_dir.resolve()),
                   "JXA_SEEDS_DIR": str(settings.seeds_dir.resolve()), "JXA_CACHE_DIR": str(settings.cache_dir),
                   "JXA_QUEUE_SIZE": "4", "JXA_STAFF_PASSWORD": password, "JXA_TRUSTED_PROXIES": "127.0.0.1",
                   "JXA_KIOSK_TOKENS": ",".join(f"{name}={token}" for name, token in tokens.items()),
                   "JXA_PREFIX_STATES": "false"}
            log = open(work / f"replica-{i + 1}.log", "wb")
            procs.append(subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve"], env=env, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=ROOT))
            log.close()
        for port, proc in zip(ports, procs, strict=True):
            wait_http(f"http://127.0.0.1:{port}/readyz", 240, proc)
        listen = free_port()
        conf = render_nginx(ROOT / "deploy" / "nginx.conf", listen=listen, replicas=ports, folder=work)
        nginx_log = open(work / "nginx.log", "wb")
        procs.append(subprocess.Popen([nginx, "-p", str(work), "-c", str(conf), "-g", "daemon off;"],
                                      stdout=nginx_log, stderr=subprocess.STDOUT))
        nginx_log.close()
        base = f"http://127.0.0.1:{listen}"
        wait_http(f"{base}/readyz", 30, procs[-1])
        print(f"up: PostgreSQL :{pg.port}, model server :{model.port}, replicas :{ports[0]} :{ports[1]}, "
              f"nginx :{listen}; {kiosks} kiosks, {len(pool)} questions", flush=True)

        answered = [0]
        guard = threading.Lock()
        killed: dict = {}

        stop_at = time.monotonic() + budget_s

        def kiosk(k: Kiosk) -> None:
            previous: tuple[str, str] | None = None
            with httpx.Client(base_url=base, timeout=httpx.Timeout(240, connect=5)) as client:
                for n, (question, history) in enumerate(k.questions):
                    if time.monotonic() > stop_at:
                        break
                    k.asked += 1
                    if not history and previous is not None and n % 5 == 4:
                        history = [previous]  # a follow-up: the conversation travels with the question
                    t = time.perf_counter()
                    deadline = time.monotonic() + 600
                    while True:
                        try:
                            r = client.post("/api/ask", json={"question": question, "history": history},
                                            headers={"X-Session-Id": k.name, "X-Kiosk-Token": tokens[k.name]})
                        except httpx.HTTPError:
                            r = None
                        if r is not None and r.status_code == 200:
                            break
                        if r is not None and r.status_code == 503 and "retry-after" in r.headers:
                            k.busy += 1
                        if r is not None and r.status_code == 429:
                            k.limited += 1
                        k.retries += 1
                        if time.monotonic() > deadline:
                            k.failed.append(question)
                            break
                        wait = float(r.headers.get("retry-after", 1)) if r is not None else 1.0
                        time.sleep(min(max(wait, 0.5), 5.0))
                    if r is None or r.status_code != 200:
                        continue
                    k.latencies.append(time.perf_counter() - t)
                    ref = r.headers.get("x-record-ref")
                    if ref:
                        k.acknowledged.append(ref)
                    previous = (question, r.json()["answer"])
                    with guard:
                        answered[0] += 1
                        if answered[0] >= kill_at * len(pool) and not killed:  # half-way through the set
                            killed["at"] = answered[0]
                            procs[0].send_signal(signal.SIGKILL)

        def kill_half_way_in_time() -> None:  # half-way in time, if not half-way through the questions first
            time.sleep(kill_at * budget_s)
            with guard:
                if not killed:
                    killed["at"] = answered[0]
                    procs[0].send_signal(signal.SIGKILL)

        threading.Thread(target=kill_half_way_in_time, daemon=True).start()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=kiosk, args=(k,), daemon=True) for k in stations]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
        store = PostgresRecords(db_url)
        rows = {r.ref for r in store.iter()}
        acknowledged = [ref for k in stations for ref in k.acknowledged]
        ins = compute(store.iter(), since=None)
        staff = httpx.get(f"{base}/insights", auth=("staff", password), timeout=120)
        total_shown = re.search(r"<b>(\d+)</b><span>Questions</span>", staff.text)
        store.close()
        latencies = [x for k in stations for x in k.latencies]
        result = {
            "questions": len(pool), "asked": sum(k.asked for k in stations), "answered": len(latencies), "failed": sum(len(k.failed) for k in stations),
            "retries": sum(k.retries for k in stations), "busy_503": sum(k.busy for k in stations),
            "rate_limited_429": sum(k.limited for k in stations),
            "killed_after": killed.get("at"), "acknowledged": len(acknowledged),
            "records": len(rows), "lost": len(set(acknowledged) - rows),
            "unacknowledged_records": len(rows - set(acknowledged)),
            "insights_total": ins.total, "insights_page": staff.status_code,
            "insights_page_total": int(total_shown.group(1)) if total_shown else None,
            "wall_s": round(wall, 1), "per_min": round(60 * len(latencies) / wall, 2),
            "p50_s": round(M.percentile(latencies, 0.5), 2), "p95_s": round(M.percentile(latencies, 0.95), 2),
        }
        return result
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if model is not None:
            model.stop()
        pg.stop()


QUALITY_TOLERANCE = 0.02  # the bar: every headline metric through the server within 0.02


@dataclass(frozen=True)
class QualityRow:
    """One headline metric, in-process and through the model server."""

    label: str
    local: float | None
    server: float | None

    @property
    def diff(self) -> float | None:
        return None if self.local is None or self.server is None else self.server - self.local

    @property
    def within(self) -> bool | None:
        """None when the metric has no value on one side (no items of its kind in the run)."""
        return None if self.diff is None else abs(self.diff) <= QUALITY_TOLERANCE + 1e-9


def compare_quality(local: dict, server: dict) -> list[QualityRow]:
    """Both runs' headline metrics (percent-kind only; latency differs by design), in report order."""
    from .report import HEADLINE

    return [QualityRow(label, local.get(key), server.get(key)) for key, label, _, kind in HEADLINE if kind == "pct"]


def format_quality(rows: list[QualityRow], local_note: str) -> str:
    def f(x):
        return "–" if x is None else f"{x:.3f}"

    lines = [f"quality: in-process ({local_note}) vs the model server (reply cache off)",
             f"{'metric':38} {'in-process':>10} {'server':>8} {'diff':>7}  within {QUALITY_TOLERANCE}"]
    for r in rows:
        mark = "–" if r.within is None else ("yes" if r.within else "NO")
        lines.append(f"{r.label:38} {f(r.local):>10} {f(r.server):>8} "
                     f"{'–' if r.diff is None else f'{r.diff:+.3f}':>7}  {mark}")
    judged = [r for r in rows if r.within is not None]
    lines.append(f"{sum(r.within for r in judged)}/{len(judged)} metrics within {QUALITY_TOLERANCE}")
    return "\n".join(lines)


def server_llm(settings: Settings, work: Path):
    """A model server on loopback and a client of it: the product's path with JXA_LLM=openai:URL."""
    from ..answering.llamacpp import GGUFVocab
    from ..answering.llm import OpenAICompatLLM
    from ..provision import resolve_llm_model
    from ..serving.model_server import ModelServer
    from ..serving.postgres import free_port

    gguf = resolve_llm_model(settings.llm_model, settings.models_dir)
    server = ModelServer.start(gguf, port=free_port(), log_path=work / "model-server.log",
                               n_ctx=settings.llm_ctx, n_threads=settings.llm_threads)
    return server, OpenAICompatLLM(server.url, vocab=GGUFVocab(gguf))
