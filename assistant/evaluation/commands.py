"""`jxa eval` (the evaluation suite) and `jxa bench` (latency medians)."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ConfigError
from ..progress import progress_bar

METHOD = """Retrieval metrics use the product's ranked measures (hybrid unless stated). A citation is valid when its
marker names a citation shown with the answer; correct when the cited measure is a gold measure. Citation
recall/precision follow ALCE, judged on what a sentence asserts (assistant/evaluation/judge.py): its cited
measures together must contain every number it states (values compared after normalising 万/亿, Chinese
numerals and full-width digits); it may not add a first-person voice, an obligation, condition, cost,
frequency, completed fact or absolute, nor an organisation, programme or figure binding the measures do not
state; in their language at most a third of its content words may be new (not in the measures, their
glossary synonyms, the question or the document's titles), across languages each of its sentences must be
aligned with theirs by the multilingual embedder (no NLI model is available offline). The judge's own
accuracy on hand-written references (faithful and unsupported claims, split into calibration and test) is
reported with the answers it flags; a citation is precise when it supports the sentence alone or is needed for the support.
Key facts are matched the same way (numbers as values, names as compacted text; a Chinese name cannot be checked
in an English answer and is skipped). Negative rejection is the refusal rate on unanswerable items (unanswerable
types, facts no policy holds, off-topic items, unanswerable follow-ups); injection and unlawful items are scored
separately (an injected string repeated or the canary leaked counts as followed; an unlawful request counts as
refused when refused at all, and apart when refused with the fixed reason `unlawful`). A follow-up is right when,
answerable, it cites a gold measure and contains every checkable key fact, and otherwise is refused. The split
and suite tables show the product on each part of the run; the CI gate reads the test split only.
Near-verbatim copies: 80% or more of an answer's character 8-grams appear in its cited text; the extractive
fallback is a quotation by design and is reported separately. Latency percentiles cover answers generated in
this run (cache hits excluded). The baseline: raw blank-line paragraphs, dense-only top-5 with the same
embedder, the same model with a plain prompt, no gate, no verification; its citations are mapped to the
measure each paragraph overlaps most."""

EVAL_SET = Path("eval/questions.jsonl")
EVAL_CACHE = Path("eval/answer-cache.jsonl")
# The suite report's targets (issue 15's done-when for documents added after the set was written).
SUITE_TARGETS = (("right_measure_cited", "Right measure cited", ">=", 0.85),
                 ("negative_rejection", "Negative rejection", ">=", 0.85),
                 ("false_refusal", "False refusal", "<=", 0.10),
                 ("expiry_flagged", "Expiry flagged", ">=", 1.0),
                 ("supersession_flagged", "Supersession flagged", ">=", 1.0))
JUDGE_REFERENCES = Path("eval/judge-references.jsonl")


def register(sub, common) -> None:
    p = sub.add_parser("eval", parents=[common], help="run the evaluation set and write a report to eval/reports/")
    p.add_argument("--set", dest="eval_set", type=Path, default=EVAL_SET)
    p.add_argument("--quick", action="store_true", help="the quick subset (items marked quick; all in the test split)")
    p.add_argument("--split", choices=["calibration", "test"], help="only the items of this split")
    p.add_argument("--suite", help="only the items of this suite (items without one are in 'main')")
    p.add_argument("--ids", help="only these items, comma-separated ids")
    p.add_argument("--types", help="only these item types, comma-separated")
    p.add_argument("--set-version", type=int, help="only the items added in this version of the set")
    p.add_argument("--only-new", action="store_true", help="only the items of the set's latest version")
    p.add_argument("--only", choices=["retrieval", "answers", "match", "all"], default="all",
                   help="'match': the policy health check's profiles alone (no model)")
    p.add_argument("--profiles", type=Path, default=Path("eval/profiles.jsonl"), help="health-check profiles")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain baseline pipeline")
    p.add_argument("--compare", type=Path, help="an earlier report's JSON: show deltas against it")
    p.add_argument("--calibrate", action="store_true",
                   help="sweep the evidence-gate thresholds over the calibration split (retrieval only) and print the best")
    p.add_argument("--calibrate-check", action="store_true",
                   help="answer the calibration split and sweep the margin of the check before a quote "
                        "(JXA_RELEVANCE_MARGIN); prints the best")
    p.add_argument("--gate", action="store_true",
                   help="exit 1 when a headline metric of the test split misses eval/thresholds.json")
    p.add_argument("--thresholds", type=Path, default=Path("eval/thresholds.json"))
    p.add_argument("--out", type=Path, default=Path("eval/reports"))
    p.add_argument("--cache", type=Path, default=None,
                   help="model replies keyed by model, prompt and evidence hashes ('none' to disable; default "
                        f"{EVAL_CACHE}, or a suite's own eval/SUITE/answer-cache.jsonl)")
    p.add_argument("--llm-server", action="store_true",
                   help="also answer the items through the shared model server (reply cache off) and print "
                        "both runs' headline metrics side by side, each difference checked against 0.02")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", parents=[common], help="latency medians: search, or answer (first token, full); "
                                                      "match: the health check; library: a generated library at scale; "
                                                      "server: the shared model server; loadtest: the deployment; "
                                                      "publish: from a new document to answers about it")
    p.add_argument("what", choices=["search", "answer", "http", "match", "library", "server", "loadtest", "publish"],
                   help="server: the shared model server with 1, 2, 4 slots against the in-process model; "
                        "loadtest: PostgreSQL, the model server, two replicas and nginx, one replica killed; "
                        "http: the evaluation set through POST /api/ask and the SSE stream of a real jxa serve, "
                        "with the plain baseline pipeline on the same questions")
    p.add_argument("--documents", type=int, default=500, help="generated documents (library bench)")
    p.add_argument("--measures", type=int, default=20, help="measures per generated document (library bench)")
    p.add_argument("--keep", type=Path, help="build the library bench here and keep it (default: a temporary folder)")
    p.add_argument("--file", type=Path, help="publish bench: the document to publish (in a copy of the library)")
    p.add_argument("--question", action="append", default=[], help="publish bench: a question about it (repeat)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--n", type=int, default=None,
                   help="questions per language (answer bench, default 6); questions (server, default 8; http, "
                        "default: the whole main set)")
    p.add_argument("--split", choices=["calibration", "test"], help="http bench: only this split's questions")
    p.add_argument("--no-baseline", action="store_true", help="http bench: leave the baseline pipeline out")
    p.add_argument("--profiles", type=Path, default=Path("eval/profiles.jsonl"), help="profiles (match bench)")
    p.add_argument("--kiosks", type=int, default=10, help="simulated kiosks (loadtest)")
    p.add_argument("--questions", type=int, default=100, help="questions in all (loadtest)")
    p.add_argument("--budget-s", type=float, default=720.0,
                   help="loadtest: seconds after which kiosks ask nothing new (a busy machine stays in time)")
    p.set_defaults(func=cmd_bench)


def cmd_eval(args, settings) -> int:
    from ..answering.assistant import Assistant
    from ..answering.cache import AnswerCache
    from ..retrieval.embedders import get_embedder
    from . import report as R
    from .dataset import check_gold, load_items, select
    from .runner import BREAKDOWNS, breakdown, retrieval_table, run_baseline, run_product, summarize, views
    from .suite_library import own_library_suites, suite_folder

    own_library = bool(args.suite) and suite_folder(args.suite) is not None
    if args.only in ("match", "all") and not own_library:
        _eval_match(args, settings)
        if args.only == "match":
            return 0
    # Reproducible replies, and no timeouts from a busy machine: latency is measured by `jxa bench`.
    settings = settings.model_copy(update={"llm_temperature": 0.0, "llm_timeout_s": max(settings.llm_timeout_s, 300.0)})
    embedder = get_embedder(settings.embedder)
    suite_lib = _suite_library(args.suite, settings, embedder) if own_library else None
    if suite_lib is not None:
        settings = settings.model_copy(update={"seeds_dir": suite_lib.seeds_dir, "index_dir": suite_lib.index_dir})
        if args.cache is None:
            args.cache = suite_lib.answer_cache
    if args.cache is None:
        args.cache = EVAL_CACHE
    assistant = Assistant.from_settings(settings, embedder=embedder)
    data = assistant.retriever.data
    items = load_items(args.eval_set, quick=args.quick)
    items, selection = _select(items, args, select)
    if not args.suite and (apart := [s for s in own_library_suites() if any(i.suite == s for i in items)]):
        items = [i for i in items if i.suite not in apart]  # they run on their own library, not this one
        print(f"eval: suite(s) {', '.join(apart)} left out: each runs on its own library "
              f"(jxa eval --suite {apart[0]})", file=sys.stderr)
    if not items:
        raise ConfigError(f"no items of {args.eval_set} match {selection}")
    check_gold(items, set(data.measures), args.eval_set)
    print(f"eval: {len(items)} items from {args.eval_set}{' (' + selection + ')' if selection else ''}", file=sys.stderr)
    t0 = time.perf_counter()
    if args.calibrate:
        from .calibrate import sweep

        return sweep(items, assistant)  # reads the calibration items among them, never a test item
    cache = None if str(args.cache) == "none" else AnswerCache(args.cache)
    if args.calibrate_check:
        from .calibrate import check_sweep

        assistant.cache = cache
        return check_sweep(items, assistant)  # reads the calibration items among them, never a test item
    retrieval = retrieval_table(items, assistant.retriever)
    _print_retrieval(retrieval)
    if args.only == "retrieval":
        return 0
    assistant.cache = cache
    from .judge import Judge, reference_rates

    judge = Judge(embedder, data.measures, data.documents, assistant.sentences, glossary=assistant.retriever.glossary)
    bar = progress_bar("product")
    prod_rows = run_product(items, assistant, judge, bar)
    bar.close()
    server_run = _eval_through_server(items, assistant, judge, settings, prod_rows, cache) if args.llm_server else None
    base_rows: list[dict] = []
    if not args.no_baseline:
        from .baseline import PlainPipeline

        plain = PlainPipeline.for_library(settings, data.measures.values(), embedder)
        bar = progress_bar("baseline")
        base_rows = run_baseline(items, assistant, plain, judge, cache, bar)
        bar.close()
    report = {
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "set": str(args.eval_set),
        "quick": args.quick, "items": len(items), "model": assistant.llm.id, "prompts": assistant.prompts.sha256,
        "embedder": embedder.id, "retrieval": retrieval, "method": METHOD,
        "selection": selection,
        "product": {"summary": summarize(prod_rows), "rows": prod_rows,
                    "by": {k: breakdown(prod_rows, k) for k in BREAKDOWNS}},
        "baseline": {"summary": summarize(base_rows) if base_rows else {}, "rows": base_rows,
                     "by": {k: breakdown(base_rows, k) if base_rows else {} for k in BREAKDOWNS}},
        "splits": views(prod_rows, "split"),
        "suites": views(prod_rows, "suite"),
        "seconds": round(time.perf_counter() - t0, 1),
        "cache": {"hits": getattr(cache, "hits", 0), "misses": getattr(cache, "misses", 0)},
        "judge_references": reference_rates(judge, JUDGE_REFERENCES) if JUDGE_REFERENCES.exists() else {},
    }
    if server_run is not None:
        report["through_server"] = server_run
    whole = not args.quick and not args.no_baseline and args.eval_set == EVAL_SET and (
        not selection or (suite_lib is not None and selection == f"suite {args.suite}"))
    if cache is not None and whole:
        dropped = cache.compact()  # a whole run: replies it did not ask for are for prompts now gone
        if dropped:
            print(f"answer cache: {dropped} stale replies dropped from {cache.path}", file=sys.stderr)
    failures = None
    if args.gate:
        thresholds = json.loads(args.thresholds.read_text(encoding="utf-8"))
        rules = thresholds["quick" if args.quick else "full"]
        test = report["splits"].get("test")
        if test is None:
            raise ConfigError("the gate checks the test split, and this run has no test items")
        failures = R.check_thresholds(test["summary"], rules)
        report["gate_failures"] = failures
        report["gate_on"] = f"the test split of this run ({test['summary']['items']} items)"
    compare = json.loads(args.compare.read_text(encoding="utf-8")) if args.compare else None
    if suite_lib is not None:
        report["suite_library"] = {"suite": suite_lib.suite, "index": str(suite_lib.index_dir),
                                   "added": list(suite_lib.added)}
    paths = R.write(report, args.out, compare)
    _print_headline(report)
    if suite_lib is not None:
        print(suite_table(report["product"]["summary"], suite_lib.suite))
    print(f"report: {paths['md']}  {paths['html']}  {paths['json']}  ({report['seconds']:.0f} s)")
    if failures:
        print("CI gate failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


def _eval_through_server(items, assistant, judge, settings, local_rows, cache) -> dict:
    """The same items through the model server, no reply cache, compared with the in-process run;
    the server run's summary and rows, for the report."""
    import tempfile

    from ..answering.assistant import Assistant
    from . import scaleout
    from .runner import run_product, summarize

    work = Path(tempfile.mkdtemp(prefix="jxa-eval-server-"))
    server, llm = scaleout.server_llm(settings, work)
    try:
        remote = Assistant(settings, assistant.retriever, llm)
        remote.cache = None  # the cache's in-process replies must not stand in for the server's
        bar = progress_bar("server")
        server_rows = run_product(items, remote, judge, bar)
        bar.close()
    finally:
        server.stop()
    note = "reply cache off" if cache is None else f"reply cache on: {cache.hits} cached in-process replies"
    summary = summarize(server_rows)
    rows = scaleout.compare_quality(summarize(local_rows), summary)
    print("\n" + scaleout.format_quality(rows, note))
    return {"note": note, "summary": summary, "rows": server_rows}


def _suite_library(suite: str, settings, embedder):
    from .suite_library import build_suite_library

    bar = progress_bar(f"{suite} library")
    lib = build_suite_library(suite, settings, embedder, progress=bar)
    bar.close()
    done = "built" if lib.built_now else "reused"
    print(f"eval: suite {suite} on its own library ({done}: {lib.index_dir.parent}): seed library + "
          + ", ".join(f"{a['doc_id']} ({a['measures']} measures)" for a in lib.added), file=sys.stderr)
    for a in lib.added:
        for w in a["warnings"]:
            print(f"  {a['doc_id']}: warning: {w}", file=sys.stderr)
    return lib


def suite_table(summary: dict, suite: str) -> str:
    """The suite's figures against their targets, one line each."""
    from .report import fmt

    lines = [f"\nsuite {suite} ({summary['items']} items)", f"{'metric':24} {'value':>7} {'target':>8}  met"]
    for key, label, op, target in SUITE_TARGETS:
        value = summary.get(key)
        met = "n/a" if value is None else ("yes" if (value >= target if op == ">=" else value <= target) else "NO")
        lines.append(f"{label:24} {fmt(value, 'pct'):>7} {op + format(target, '.2f'):>8}  {met}")
    return "\n".join(lines)


def _eval_match(args, settings) -> None:
    from . import match_eval

    result = match_eval.run(settings, args.out / "match", args.profiles)  # beside, not among, the question reports
    print("policy health check (profiles; the test split is never tuned on)")
    print(match_eval.table(result))
    missed = match_eval.missed_targets(result["test"])
    print("test split targets: " + ("all met" if not missed else "missed: " + ", ".join(missed)))


def _select(items, args, select) -> tuple[list, str]:
    """The items the flags ask for, and a short description of the selection ('' for all)."""
    version = args.set_version
    if args.only_new:
        version = max(i.set_version for i in items) if items else None
    ids = [x.strip() for x in args.ids.split(",") if x.strip()] if args.ids else None
    types = [x.strip() for x in args.types.split(",") if x.strip()] if args.types else None
    chosen = select(items, split=args.split, suite=args.suite, ids=ids, types=types, set_version=version)
    parts = [f"split {args.split}" if args.split else "", f"suite {args.suite}" if args.suite else "",
             f"{len(ids)} ids" if ids else "", f"types {','.join(types)}" if types else "",
             f"set version {version}" if version is not None else ""]
    return chosen, "; ".join(p for p in parts if p)


def _print_retrieval(table: dict) -> None:
    print("\nretrieval (answerable items)")
    print(f"{'mode':8} {'part':16} {'n':>4} {'R@1':>6} {'R@5':>6} {'MRR@10':>7} {'nDCG@10':>8}")
    for mode, groups in table.items():
        for part in ("all", "same-language", "cross-lingual", "question en", "question zh", "question zh-hant"):
            g = groups.get(part)
            if g:
                print(f"{mode:8} {part:16} {g['n']:>4} {g['r1']:>6.3f} {g['r5']:>6.3f} {g['mrr10']:>7.3f} {g['ndcg10']:>8.3f}")


def _print_headline(report: dict) -> None:
    from .report import HEADLINE, fmt

    prod, base = report["product"]["summary"], report["baseline"]["summary"]
    print(f"\n{'metric':28} {'product':>9} {'baseline':>9}")
    for key, label, _, kind in HEADLINE:
        print(f"{label:28} {fmt(prod.get(key), kind):>9} {fmt(base.get(key), kind):>9}")


def cmd_bench(args, settings) -> int:
    from . import metrics as M

    if args.what == "match":
        from ..matching.commands import cmd_bench_match

        return cmd_bench_match(args, settings)

    if args.what == "publish":
        from . import publish_bench

        if args.file is None or not args.question:
            raise ConfigError("jxa bench publish needs --file DOCUMENT and at least one --question")
        print(json.dumps(publish_bench.run(settings, args.file, args.question), ensure_ascii=False, indent=1))
        return 0

    if args.what == "library":
        from . import scale

        bar = progress_bar("embedding")
        result = scale.run(settings, args.documents, args.measures, rounds=args.rounds, keep=args.keep,
                           progress=bar)
        bar.close()
        print(json.dumps(result, ensure_ascii=False, indent=1))
        return 0

    if args.what == "http":
        from . import http_bench

        items = http_bench.bench_items(Path("eval/questions.jsonl"), args.n, args.split)
        bar = progress_bar("questions")
        result = http_bench.run(settings, items, baseline=not args.no_baseline, progress=bar)
        bar.close()
        summary = result.summary()
        print(http_bench.format_summary(summary))
        print(json.dumps(summary, ensure_ascii=False, indent=1))
        return 0 if not summary["streamed_differs"] else 1

    if args.what in ("server", "loadtest"):
        from . import scaleout

        if args.what == "server":
            scaleout.bench_server(settings, n=args.n or 8)
        else:
            result = scaleout.load_test(settings, kiosks=args.kiosks, questions=args.questions,
                                        budget_s=args.budget_s)
            print(json.dumps(result, indent=2))
            return 0 if result["failed"] == 0 and result["lost"] == 0 and result["answered"] == result["asked"] else 1
        return 0

    if args.what == "search":
        from ..retrieval import open_retriever

        retriever = open_retriever(settings)
        queries = _bench_questions(Path("eval/questions.jsonl"), 20, 20)
        retriever.search(queries[0], k=5)  # warm caches (jieba dictionary, FAISS)
        result = {}
        for mode in ("bm25", "dense", "hybrid"):
            times = []
            for _ in range(args.rounds):
                for q in queries:
                    t = time.perf_counter()
                    retriever.search(q, k=5, mode=mode)
                    times.append((time.perf_counter() - t) * 1000)
            result[mode] = M.percentile(times, 0.5), M.percentile(times, 0.95)
        print(f"search latency over {len(queries)} questions x {args.rounds} rounds (ms)")
        for mode, (p50, p95) in result.items():
            print(f"  {mode:7} p50 {p50:7.2f}  p95 {p95:7.2f}  ratio to bm25 {p50 / result['bm25'][0]:.2f}")
        return 0

    from ..answering.assistant import Assistant
    from ..answering.llm import PrefixStateStore

    assistant = Assistant.from_settings(settings)
    llm = assistant.llm  # load before timing: the bench measures answers, not model loading
    t = time.perf_counter()
    computed = assistant.warm()
    stored = llm.prefixes if isinstance(llm, PrefixStateStore) else None
    n = args.n or 6
    en = _bench_questions(Path("eval/questions.jsonl"), n, 0, answerable=True)
    zh = _bench_questions(Path("eval/questions.jsonl"), 0, n, answerable=True)
    assistant.ask(en[-1])  # llama.cpp now holds the system prompt, as it does after any first question
    print(f"answer latency, {n} questions per language, model {llm.id}")
    if stored is None:
        print("  (this backend keeps no prefix states: one run only)")
        runs = {"": _bench_run(assistant, en, zh)}
    else:
        print(f"  prefix states: {len(stored)} stored ({computed} computed now in {time.perf_counter() - t:.0f} s)")
        # Baseline in the same process: the same questions with only the system prompt reused.
        llm.prefixes = None
        cold = _bench_run(assistant, en, zh)
        llm.prefixes = stored
        runs = {"without prefix states": cold, "with prefix states": _bench_run(assistant, en, zh)}
    for label, result in runs.items():
        if label:
            print(f"  {label}:")
        for lang, (ttft, total, modes, rerank, _stages) in result.items():
            print(f"    {lang}: first token p50 {M.percentile(ttft, .5) / 1000:.2f} s (p95 {M.percentile(ttft, .95) / 1000:.2f}), "
                  f"full answer p50 {M.percentile(total, .5) / 1000:.2f} s (p95 {M.percentile(total, .95) / 1000:.2f}); "
                  f"modes {', '.join(sorted(set(modes)))}; reranked {len(rerank)}/{len(ttft)}"
                  + (f" (p50 {M.percentile(rerank, .5) / 1000:.2f} s)" if rerank else ""))
    # Where the seconds go, from the last run: each stage's median over the questions that ran it, and
    # its share of the summed full-answer time.
    stages = runs[list(runs)[-1]]
    print("  by stage (last run; p50 over the questions that ran it, share of all answer time):")
    for lang, (*_, per_stage) in stages.items():
        total = sum(per_stage.get("total", [])) or 1.0
        parts = [f"{name} {M.percentile(ms, .5) / 1000:.2f} s x{len(ms)} ({sum(ms) / total:.0%})"
                 for name, ms in per_stage.items() if name != "total" and ms]
        print(f"    {lang}: " + "; ".join(parts))
    if len(runs) == 2:
        (_, a), (_, b) = runs.items()
        for lang in a:
            ratio = M.percentile(b[lang][0], .5) / max(1e-9, M.percentile(a[lang][0], .5))
            print(f"  {lang}: first token p50 with states / without = {ratio:.2f}")
    return 0


#: the stages an answer's timings record, in pipeline order (`total` last: the whole answer)
BENCH_STAGES = ("retrieve", "rerank", "answer", "check", "translate", "total")


def _bench_run(assistant, en: list[str], zh: list[str]) -> dict:
    out = {}
    for lang, qs in (("en", en), ("zh", zh)):
        ttft, total, modes, rerank = [], [], [], []
        stages: dict[str, list[float]] = {name: [] for name in BENCH_STAGES}
        for q in qs:
            a = assistant.ask(q)
            ttft.append(a.timings.get("first_token_ms", 0))
            total.append(a.timings.get("total_ms", 0))
            modes.append(a.mode)
            if "rerank_ms" in a.timings:  # asked only when retrieval's first is not clear
                rerank.append(a.timings["rerank_ms"])
            for name in BENCH_STAGES:
                if f"{name}_ms" in a.timings:
                    stages[name].append(a.timings[f"{name}_ms"])
        out[lang] = (ttft, total, modes, rerank, stages)
    return out


def _bench_questions(path: Path, n_en: int, n_zh: int, answerable: bool | None = None) -> list[str]:
    from .dataset import load_items

    items = [i for i in load_items(path) if answerable is None or i.answerable == answerable]
    items = [i for i in items if not i.history]
    en = [i.question for i in items if i.language == "en"][:n_en]
    zh = [i.question for i in items if i.language != "en"][:n_zh]
    return en + zh
