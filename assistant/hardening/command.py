"""`jxa hardening`: the parser, the order the checks run in, and the printed figures."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .checks import burst, faults, index_kill, injection, load, malformed, memory, records_kill
from .checks import probes as outside_probes
from .rig import Figure, Rig

log = logging.getLogger(__name__)


def register(sub, common) -> None:
    p = sub.add_parser("hardening", parents=[common],
                       help="load, faults and hostile input against a real local server; prints the figures")
    p.add_argument("--fake", action="store_true",
                   help="fake-timed model (0.05 s per piece) and fake-lexical embedder: fast, for CI")
    p.add_argument("--only", default=CHECKS, help=f"which checks, e.g. 'ade' (default: all of {CHECKS})")
    p.add_argument("--sessions", type=int, help="(a) concurrent sessions (default 20 fake, 4 real)")
    p.add_argument("--per-session", type=int, help="(a) questions per session (default 5 fake, 2 real)")
    p.add_argument("--fault-questions", type=int, help="(c) questions per fault (default 6 fake, 3 real)")
    p.add_argument("--probes", type=int, help="(d) injection probes (default all with --fake, 20 real)")
    p.add_argument("--requests", type=int, default=500, help="(g) sequential requests")
    p.add_argument("--questions", type=Path, default=Path("eval/questions.jsonl"),
                   help="evaluation set the load questions come from")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.set_defaults(func=cmd_hardening)


CHECKS = "abcdefghi"


def run_checks(rig: Rig, only: str = CHECKS, *, sessions: int = 20, per_session: int = 5, probes: int | None = None,
               fault_questions: int = 6, requests: int = 500, report: Callable[[Figure], None] | None = None) -> list[Figure]:
    plan: dict[str, Callable[[], Figure]] = {
        "a": lambda: load.load_check(rig, sessions, per_session),
        "b": lambda: burst.burst_check(rig),
        "c": lambda: faults.fault_check(rig, fault_questions),
        "d": lambda: injection.injection_check(rig, probes),
        "e": lambda: malformed.malformed_check(rig),
        "f": lambda: index_kill.index_kill_check(rig),
        "g": lambda: memory.memory_check(rig, requests),
        "h": lambda: records_kill.records_kill_check(rig),
        "i": lambda: outside_probes.probe_check(rig),
    }
    figures = []
    for key in only:
        t0 = time.perf_counter()
        try:
            fig = plan[key]()
        except Exception as exc:  # one broken check must not hide the others' figures
            log.exception("check (%s) raised", key)
            fig = Figure(key, "raised", failures=[f"{type(exc).__name__}: {exc}"])
        fig.seconds = time.perf_counter() - t0
        figures.append(fig)
        if report:
            report(fig)
    return figures


def cmd_hardening(args, settings) -> int:
    # The checks provoke failures on purpose; their warnings would bury the figures (-v shows them).
    quiet = logging.getLogger("assistant")
    level = quiet.level
    if not args.verbose:
        quiet.setLevel(logging.ERROR)
    try:
        return _run_command(args, settings)
    finally:
        quiet.setLevel(level)


def _run_command(args, settings) -> int:
    fake = args.fake
    unknown = set(args.only) - set(CHECKS)
    if unknown:
        print(f"jxa: unknown checks {''.join(sorted(unknown))}: use letters from {CHECKS}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="jxa-hardening-") as tmp:
        rig = Rig.create(settings, fake=fake, work=Path(tmp), questions_path=args.questions)
        model = rig.model().id if fake else f"{rig.settings.llm} (real)"
        print(f"hardening: model {model}, embedder {rig.retriever.embedder.id}, queue {rig.settings.queue_size}, "
              f"{len(rig.questions)} load questions; corpus: seeds + 2 poisoned documents", flush=True)

        def report(fig: Figure) -> None:
            status = "ok" if fig.ok else "FAILED"
            print(f"\n({fig.key}) {fig.title}  [{status}, {fig.seconds:.0f} s]", flush=True)
            for line in fig.lines:
                print(f"    {line}", flush=True)
            for failure in fig.failures:
                print(f"    FAILED: {failure}", flush=True)

        figures = run_checks(
            rig, args.only, report=report,
            sessions=args.sessions or (20 if fake else 4), per_session=args.per_session or (5 if fake else 2),
            probes=args.probes if args.probes is not None else (None if fake else 20),
            fault_questions=args.fault_questions or (6 if fake else 3), requests=args.requests)
    seconds = time.perf_counter() - t0
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"fake": fake, "seconds": round(seconds, 1),
                                         "figures": [f.to_json() for f in figures]}, ensure_ascii=False, indent=1,
                                        default=str), encoding="utf-8")
    failed = [f.key for f in figures if not f.ok]
    print(f"\nhardening: {len(figures) - len(failed)}/{len(figures)} checks passed in {seconds:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


