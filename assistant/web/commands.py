"""`jxa serve` and `jxa insights`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path


def cmd_serve(args, settings) -> int:
    import uvicorn

    from .app import create_app
    from .serving import server_config

    app = create_app(settings, kiosk=args.kiosk)
    where = f"http://{settings.host}:{settings.port}/"
    print(f"serving {'the kiosk' if args.kiosk else 'the chat'} on {where} (API: {where}api/ask, "
          f"{where}v1/chat/completions; readiness: {where}readyz). Ctrl-C stops.", file=sys.stderr)
    uvicorn.Server(server_config(app, settings)).run()
    return 0


def cmd_insights(args, settings) -> int:
    from ..insights import compute, gaps_csv, render_text
    from ..record_stores import open_records

    records = open_records(settings)
    if args.purge:
        if settings.retention_days <= 0:
            print("retention_days is 0 (keep forever): nothing deleted")
        else:
            n = records.purge(settings.retention_days)
            print(f"deleted {n} records older than {settings.retention_days} days from {records!r}")
        if not args.csv and not args.summary:
            return 0
    since = datetime.now(UTC) - timedelta(days=args.days) if args.days else None
    embedder, index = _embedder_and_index(settings)
    ins = compute(records.iter(since=since), embedder=embedder, index=index, since=since)
    print(render_text(ins))
    if args.csv:
        Path(args.csv).write_text("\ufeff" + gaps_csv(ins), encoding="utf-8")
        print(f"\n{len(ins.gaps)} policy gaps written to {args.csv}")
    return 0


def _embedder_and_index(settings):
    """The index's embedder and data for topic labels; without an index, the embedder alone."""
    from ..errors import IndexLoadError
    from ..retrieval import open_retriever
    from ..retrieval.embedders import get_embedder

    try:
        retriever = open_retriever(settings)
        return retriever.embedder, retriever.data
    except IndexLoadError as exc:
        print(f"jxa: {exc}; topics are labelled by their terms only", file=sys.stderr)
        return get_embedder(settings.embedder), None


def cmd_model_server(args, settings) -> int:
    from ..serving.model_server import main

    argv = ["--host", args.bind, "--port", str(args.listen), "--n-ctx", str(settings.llm_ctx),
            "--n-threads", str(settings.llm_threads), "--cache-bytes", str(args.cache_mb << 20),
            "--gpu-layers", str(args.gpu_layers)]
    if settings.llm_model is not None:
        argv += ["--model", str(settings.llm_model)]
    print(f"serving the language model on http://{args.bind}:{args.listen}/v1 (replicas: "
          f"JXA_LLM=openai:http://{args.bind}:{args.listen}/v1). Ctrl-C stops.", file=sys.stderr)
    return main(argv)


def register(sub, common) -> None:
    p = sub.add_parser("serve", parents=[common], help="the chat in the browser, the HTTP API and /insights")
    p.add_argument("--kiosk", action="store_true",
                   help="kiosk mode: large type, no login, conversation cleared after kiosk_idle_s")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("model-server", parents=[common],
                       help="the shared language model for several replicas (OpenAI-compatible, llama_cpp.server)")
    p.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    p.add_argument("--listen", type=int, default=8081, help="port to listen on")
    p.add_argument("--cache-mb", type=int, default=2048, help="RAM for cached prompt states (0: none)")
    p.add_argument("--gpu-layers", type=int, default=0, help="layers offloaded to a GPU (-1: all; needs a GPU build)")
    p.set_defaults(func=cmd_model_server)

    p = sub.add_parser("insights", parents=[common], help="demand summary from the consultation records")
    p.add_argument("--days", type=int, default=30, help="period to summarise (0: all records; default 30)")
    p.add_argument("--csv", metavar="FILE", help="also write the policy gaps to FILE as CSV")
    p.add_argument("--purge", action="store_true",
                   help="delete records older than retention_days (then stop, unless --csv or --summary)")
    p.add_argument("--summary", action="store_true", help="with --purge: print the summary as well")
    p.set_defaults(func=cmd_insights)
