"""`jxa docs add | list | show | remove` and `jxa translations build | check`: the policy library from
the command line."""

from __future__ import annotations

import json
from pathlib import Path

from ..corpus.parse import ParsedDocument
from ..types import Document
from .ingest import Draft, find, prepare, publish, remove, status
from .translations import TranslateReport, Translations, check_library, library_sentences, translate_library


def _dates(d: Document) -> str:
    parts = [f"issued {d.issued}" if d.issued else "issue date not found"]
    if d.effective:
        parts.append(f"effective {d.effective}")
    parts.append(f"valid until {d.valid_until}" if d.valid_until else "no end of validity stated")
    return ", ".join(parts)


def render_document(parsed: ParsedDocument, state: str = "", warnings: tuple[str, ...] = ()) -> str:
    """What staff check before publishing: metadata, then every measure with its label and departments."""
    d = parsed.document
    lines = [
        f"{d.title}",
        f"  id          {d.doc_id}" + (f"   ({state})" if state else ""),
        f"  number      {d.doc_number or '(none found)'}",
        f"  issuer      {d.issuer or '(none found)'}",
        f"  district    {d.district or '(none found)'}",
        f"  language    {d.language}",
        f"  dates       {_dates(d)}",
    ]
    if d.validity_text:
        lines.append(f"  validity    {d.validity_text}")
    if d.supersedes:
        lines.append(f"  supersedes  {d.supersedes}")
    lines.append(f"  measures    {len(parsed.measures)}")
    for m in parsed.measures:
        lines.append(f"    {m.measure_id}  {m.label}")
        if m.departments:
            lines.append(f"        departments: {'; '.join(m.departments)}")
        text = m.text if len(m.text) <= 120 else m.text[:117] + "..."
        lines.append(f"        {text}")
    for w in warnings or parsed.warnings:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


def _draft_json(draft: Draft) -> dict:
    from dataclasses import asdict

    from ..retrieval.store import doc_to_json

    return {"document": doc_to_json(draft.document), "measures": [asdict(m) for m in draft.parsed.measures],
            "warnings": list(draft.warnings), "proposed_supersedes": list(draft.proposed_supersedes)}


def cmd_docs_add(args, settings) -> int:
    from ..progress import progress_bar
    from ..retrieval.embedders import get_embedder

    draft = prepare(Path(args.file), settings.seeds_dir, doc_id=args.id, district=args.district, title=args.title,
                    supersedes=args.supersedes)
    if args.json:
        print(json.dumps(_draft_json(draft), ensure_ascii=False, indent=1))
    else:
        print(render_document(draft.parsed, "preview", draft.warnings))
        for old in draft.proposed_supersedes:
            print(f"  proposed: this looks like a newer version of {old} (same issuer and title, earlier date); "
                  f"add --supersedes {old} to record it")
    if args.dry_run:
        print("dry run: nothing was changed")
        return 0
    bar = progress_bar("embedding")
    doc, report = publish(draft, settings.seeds_dir, settings.index_dir, get_embedder(settings.embedder),
                          hnsw=settings.hnsw, progress=bar)
    bar.close()
    print(f"published {doc.doc_id} as {settings.seeds_dir / doc.source_file}; index: {report.documents} documents, "
          f"{report.measures} measures ({report.embedded} chunks embedded, {report.chunks - report.embedded} reused)")
    if args.no_translate:
        print("translations: not made (--no-translate); run `jxa translations build` before quoting it in "
              "the other language")
        return 0
    return _translate(settings, only=doc.doc_id)


def _translate(settings, only: str | None = None, limit: int | None = None) -> int:
    """Translate the library's sentences the store lacks (those of document `only`, when given)."""
    from ..answering.assistant import Assistant
    from ..answering.paths.translate import translate
    from ..errors import BackendError
    from ..progress import progress_bar

    assistant = Assistant.from_settings(settings)
    data = assistant.retriever.data
    measures = [m for m in data.measures.values() if only is None or m.doc_id == only]
    sentences = library_sentences(data.documents.values(), measures)
    # With `only`, the other documents' entries stay, even if stale: `jxa translations build` prunes.
    store = Translations.load(settings.seeds_dir)
    bar = progress_bar("translating")
    try:
        report = translate_library(store, sentences, lambda text, lang: _aligned(assistant, text, translate(
                                       assistant.services, text, lang)),
                                   assistant.llm.id, limit=limit if only is None else None, progress=bar,
                                   prune=only is None, flaw=_flaw(assistant))
    except BackendError as exc:
        bar.close()
        print(f"translations: the model failed ({exc}); what was made is saved in {store.path}; run "
              f"`jxa translations build` to finish")
        return 1
    bar.close()
    _print_report(report, store)
    return 0


def _print_report(report: TranslateReport, store: Translations) -> None:
    print(f"translations: {report.made} sentences translated now ({report.kept} kept, {report.made - report.kept} "
          f"quoted in the original: no translation passed its checks), {report.pruned} stale entries removed; "
          f"{report.sentences} sentences in scope; stored in {store.path}")


def cmd_translations_build(args, settings) -> int:
    return _translate(settings, limit=args.limit)


def _aligned(assistant, source: str, out: str | None) -> str | None:
    """The translation made, or None when it is not aligned with its source."""
    from ..answering.paths.translate import alignment_flaw

    return None if out is None or alignment_flaw(assistant.services, source, out) else out


def _flaw(assistant):
    """What is wrong with a stored translation: the checks of one made now, and its alignment with its
    source (which needs the index's embedder)."""
    from ..answering.paths.translate import alignment_flaw, translation_flaw

    return lambda source, text, language: (translation_flaw(source, text, language)
                                           or alignment_flaw(assistant.services, source, text))


def cmd_translations_check(args, settings) -> int:
    from ..answering.assistant import Assistant

    assistant = Assistant.from_settings(settings)
    data = assistant.retriever.data
    sentences = library_sentences(data.documents.values(), data.measures.values())
    store = Translations.load(settings.seeds_dir)
    problems, kept = check_library(store, sentences, _flaw(assistant))
    if args.json:
        print(json.dumps({"sentences": len(sentences), "kept": kept,
                          "problems": [{"source": p.source, "language": p.language, "problem": p.problem}
                                       for p in problems]}, ensure_ascii=False, indent=1))
    else:
        for p in problems:
            print(f"{p.language}  {p.problem}: {p.source[:100]}")
        print(f"{len(sentences)} sentences; {kept} with a kept translation, "
              f"{len(sentences) - kept - len(problems)} quoted in the original, {len(problems)} problems")
    return 1 if problems else 0


def cmd_docs_list(args, settings) -> int:
    from ..retrieval.build import parse_seeds

    library = parse_seeds(settings.seeds_dir)
    docs = [p.document for p in library]
    today = settings.effective_today()
    rows = [{"doc_id": d.doc_id, "language": d.language, "measures": len(p.measures), "district": d.district,
             "issued": d.issued.isoformat() if d.issued else None,
             "valid_until": d.valid_until.isoformat() if d.valid_until else None,
             "status": status(d, docs, today), "title": d.title, "file": d.source_file}
            for p, d in zip(library, docs, strict=True)]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    for r in rows:
        print(f"{r['doc_id']:28} {r['language']}  {r['measures']:3} measures  {r['issued'] or '-':10}  "
              f"{r['status']:18} {r['title']}")
    print(f"{len(rows)} documents, {sum(r['measures'] for r in rows)} measures in {settings.seeds_dir}")
    return 0


def cmd_docs_show(args, settings) -> int:
    from ..retrieval.build import parse_seeds

    parsed = find(settings.seeds_dir, args.id)
    docs = [p.document for p in parse_seeds(settings.seeds_dir)]
    print(render_document(parsed, status(parsed.document, docs, settings.effective_today())))
    return 0


def cmd_docs_remove(args, settings) -> int:
    from ..retrieval.embedders import get_embedder

    parsed = find(settings.seeds_dir, args.id)
    if args.dry_run:
        print(f"would remove {args.id} ({parsed.document.title}, {len(parsed.measures)} measures, "
              f"{settings.seeds_dir / parsed.document.source_file}); dry run: nothing was changed")
        return 0
    report = remove(args.id, settings.seeds_dir, settings.index_dir, get_embedder(settings.embedder),
                    hnsw=settings.hnsw)
    print(f"removed {args.id}; index: {report.documents} documents, {report.measures} measures")
    return 0


def register(sub, common) -> None:
    docs = sub.add_parser("docs", help="the policy library: add, list, show, remove documents")
    dsub = docs.add_subparsers(dest="docs_command", required=True)
    p = dsub.add_parser("add", parents=[common], help="parse a document (text, PDF, DOCX, HTML), show what was "
                                                     "found, add it to the library and update the index")
    p.add_argument("file")
    p.add_argument("--dry-run", "--preview", dest="dry_run", action="store_true",
                   help="show the parsed preview only; change nothing")
    p.add_argument("--id", help="document id (default: derived from district, year and text)")
    p.add_argument("--district", help="district or city, when the issuer does not name it")
    p.add_argument("--title", help="title, when the text states none")
    p.add_argument("--supersedes", metavar="ID", help="the earlier version this document replaces")
    p.add_argument("--json", action="store_true", help="the preview as JSON")
    p.add_argument("--no-translate", action="store_true",
                   help="publish without translating its measures (then run `jxa translations build`)")
    p.set_defaults(func=cmd_docs_add)
    p = dsub.add_parser("list", parents=[common], help="every document with its status")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_docs_list)
    p = dsub.add_parser("show", parents=[common], help="one document's metadata and measures")
    p.add_argument("id")
    p.set_defaults(func=cmd_docs_show)
    p = dsub.add_parser("remove", parents=[common], help="take a document out of the library and the index")
    p.add_argument("id")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_docs_remove)

    tr = sub.add_parser("translations", help="the measures' stored translations into the other language")
    tsub = tr.add_subparsers(dest="translations_command", required=True)
    p = tsub.add_parser("build", parents=[common], help="translate every sentence not yet stored (resumable); "
                                                       "remove the entries of sentences no longer in the library")
    p.add_argument("--limit", type=int, help="translate at most this many sentences in this run")
    p.set_defaults(func=cmd_translations_build)
    p = tsub.add_parser("check", parents=[common], help="every sentence has an entry and every stored "
                                                       "translation passes the checks (exit 1 if not)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_translations_check)
