"""`jxa`: the command line. The edge where errors become one-line messages and exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from .config import Settings
from .errors import AssistantError
from .privacy import redact_logs
from .progress import progress_bar

log = logging.getLogger("assistant")


# ---------------------------------------------------------------- settings flags
def _settings_parent() -> argparse.ArgumentParser:
    """One --flag per Settings field, so the CLI and JXA_* env vars can never drift apart."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings (also JXA_<NAME> environment variables)")
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        if field.annotation is bool:
            group.add_argument(flag, dest=f"set_{name}", action=argparse.BooleanOptionalAction, default=None,
                               help=field.description)
        else:
            group.add_argument(flag, dest=f"set_{name}", default=None, metavar=name.upper(), help=field.description)
    parent.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    return parent


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("set_") and v is not None}
    return Settings(**overrides)


# ---------------------------------------------------------------- commands
def cmd_index_build(args, settings: Settings) -> int:
    from .retrieval.build import build_index
    from .retrieval.embedders import get_embedder

    bar = progress_bar("embedding")
    embedder = get_embedder(settings.embedder)
    report = build_index(settings.seeds_dir, settings.index_dir, embedder, hnsw=settings.hnsw, force=args.force,
                         progress=bar)
    bar.close()
    if report.built:
        print(f"index built in {settings.index_dir}: {report.documents} documents, {report.measures} measures, "
              f"{report.chunks} chunks ({report.embedded} embedded, {report.chunks - report.embedded} reused)")
    else:
        print(f"index in {settings.index_dir} is up to date ({report.documents} documents, {report.measures} measures)")
    return 0


def cmd_index_status(args, settings: Settings) -> int:
    from .retrieval.build import is_current
    from .retrieval.embedders import get_embedder
    from .retrieval.store import read_manifest

    manifest = read_manifest(settings.index_dir)
    if manifest is None:
        print(f"no index in {settings.index_dir}")
        return 1
    current = is_current(settings.index_dir, settings.seeds_dir, get_embedder(settings.embedder).id, settings.hnsw)
    print(json.dumps({"current": current, **{k: manifest[k] for k in ("embedder", "dim", "chunks", "documents")}},
                     ensure_ascii=False, indent=1))
    return 0 if current else 1


def cmd_search(args, settings: Settings) -> int:
    from .retrieval import open_retriever

    retriever = open_retriever(settings)
    hits = retriever.search(args.query, k=args.k, mode=args.mode)
    if args.json:
        print(json.dumps({"query": args.query, "hits": [h.to_json() for h in hits]}, ensure_ascii=False, indent=1))
        return 0
    if not hits:
        print("no matching measures")
    for h in hits:
        print(f"{h.rank}. [{h.score:.4f}] {h.measure.label}  ({h.measure.measure_id})")
        print(f"   {_short(h.measure.text, 160)}")
    return 0


def cmd_models(args, settings: Settings) -> int:
    from .provision import resolve_llm_model

    path = resolve_llm_model(settings.llm_model, settings.models_dir)
    print(f"LLM ready: {path}")
    return 0


def cmd_warm(args, settings: Settings) -> int:
    """Store the model's state after each measure's prompt prefix, so answers start quickly."""
    from .answering.assistant import Assistant

    assistant = Assistant.from_settings(settings)
    t0 = time.perf_counter()
    bar = progress_bar("prefix states")
    done = assistant.warm(progress=bar)
    bar.close()
    from .answering.llm import PrefixStateStore

    stored = assistant.llm.prefixes if isinstance(assistant.llm, PrefixStateStore) else None
    if stored is None:
        print("this LLM backend keeps no prefix states (remote server, or JXA_PREFIX_STATES=false)")
        return 0
    print(f"{done} prefix states computed in {time.perf_counter() - t0:.0f} s; {len(stored)} stored in {stored.folder}")
    return 0


def cmd_chat(args, settings: Settings) -> int:
    """Interactive loop in the terminal: ask questions, see cited answers."""
    from .answering.assistant import Assistant

    assistant = Assistant.from_settings(settings)
    history: list[tuple[str, str]] = []
    print("Ask about Shanghai business-environment policies (English or 中文). Empty line or Ctrl-D to quit.")
    while True:
        try:
            question = input("\n? ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not question:
            return 0
        try:
            answer = assistant.ask(question, history)
        except AssistantError as exc:
            print(f"! {exc}")
            continue
        print(_render_answer(answer))
        history.append((question, answer.answer))


def cmd_ask(args, settings: Settings) -> int:
    from .answering.assistant import Assistant, parse_history

    history = parse_history(json.loads(Path(args.history).read_text(encoding="utf-8"))) if args.history else []
    assistant = Assistant.from_settings(settings)
    if args.stream and not args.json:
        answer = None
        for event in assistant.ask_stream(args.question, history):
            if event.kind == "delta":
                print(event.text, end="", flush=True)
            elif event.kind == "final":
                answer = event.answer
        print("\n")
        if answer is not None:
            print(_render_sources(answer))
        return 0
    answer = assistant.ask(args.question, history)
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False, indent=1))
    else:
        print(_render_answer(answer))
    return 0


def _render_sources(answer) -> str:
    lines = []
    for c in answer.citations:
        flag = " (EXPIRED)" if c.expired else ""
        lines.append(f"[{c.n}] {c.measure.label}{flag}")
    for h in answer.related:
        lines.append(f"related: {h.measure.label}")
    return "\n".join(lines)


def _render_answer(answer) -> str:
    return f"\n{answer.answer}\n\n{_render_sources(answer)}".rstrip()


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    common = _settings_parent()
    parser = argparse.ArgumentParser(prog="jxa", description="Policy Q&A for enterprises, with citations.")
    sub = parser.add_subparsers(dest="command", required=True)

    index = sub.add_parser("index", help="build or inspect the index")
    isub = index.add_subparsers(dest="index_command", required=True)
    p = isub.add_parser("build", parents=[common], help="build the index from the seeds folder (skips if current)")
    p.add_argument("--force", action="store_true", help="rebuild and re-embed everything")
    p.set_defaults(func=cmd_index_build)
    p = isub.add_parser("status", parents=[common], help="is the index current? (exit 1 if not)")
    p.set_defaults(func=cmd_index_status)

    p = sub.add_parser("search", parents=[common], help="retrieve the measures closest to a query")
    p.add_argument("query")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("models", parents=[common], help="assemble and verify the default LLM")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("warm", parents=[common],
                       help="precompute the model state for every measure's prompt prefix (fast first token)")
    p.set_defaults(func=cmd_warm)

    p = sub.add_parser("ask", parents=[common], help="answer one question with citations")
    p.add_argument("question")
    p.add_argument("--json", action="store_true")
    p.add_argument("--history", help="JSON file: a list of [user, assistant] pairs")
    p.add_argument("--stream", action="store_true")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", parents=[common], help="interactive questions in the terminal")
    p.set_defaults(func=cmd_chat)

    from .commands import register_extra

    register_extra(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2) if hasattr(args, "verbose") else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    redact_logs()  # a question quoted in a warning must not put a phone number into the server's log
    try:
        settings = settings_from_args(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        print(f"jxa: invalid setting {'.'.join(map(str, first['loc']))}: {first['msg']}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, settings) or 0)
    except AssistantError as exc:
        print(f"jxa: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
