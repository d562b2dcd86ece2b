"""What the chat shows: model output as inert Markdown, source chips, the full text of a measure,
and starter questions drawn from the corpus."""

from __future__ import annotations

import html
import re
from datetime import date

from ..corpus.clean import to_simplified
from ..types import Document, Measure
from .texts import t

_URL_SCHEME = re.compile(r"(?i)\b(https?|ftp|file|javascript|data):")
_WWW = re.compile(r"(?i)\bwww\.")


def safe_markdown(text: str) -> str:
    """Text that Markdown renders as itself: no HTML, no links or images, nothing fetched or clicked.

    Model output and documents are data. HTML is escaped (the Chatbot sanitizes too, as a second
    line); link and image syntax and bare URLs are broken so a kiosk visitor cannot be sent away.

    Example:
        >>> safe_markdown('<img src=x onerror=alert(1)> see [here](http://evil.example)')
        '&lt;img src=x onerror=alert(1)&gt; see [here]\\\\(http\\\\://evil.example)'
    """
    text = html.escape(text, quote=False)
    text = text.replace("](", "]\\(").replace("![", "!\\[")
    text = _URL_SCHEME.sub(lambda m: m.group(1) + "\\:", text)
    text = _WWW.sub(lambda m: m.group(0)[:-1] + "\\.", text)
    return text.replace("$", "\\$")


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def chip_label(n: int | None, label: str, expired: bool, lang: str) -> str:
    mark = f"⚠ {t(lang, 'expired')} · " if expired else ""
    prefix = f"[{n}] " if n is not None else "↗ "
    return _short(f"{prefix}{mark}{label}", 120)


def labels_html(labels, vocab, lang: str) -> str:
    """A measure's labels in one line (kind of support, who it is for, where), each from its words."""
    if labels is None or vocab is None:
        return ""
    e = html.escape
    kinds = [vocab.label("kind", k, lang) for k in labels.kinds]
    who = list(dict.fromkeys(vocab.label(b.category, b.key, lang) for o in labels.offers for b in o.beneficiaries))
    where = list(dict.fromkeys(p.key for o in labels.offers for p in o.places))
    parts = [("labels_kind", kinds), ("labels_for", who), ("labels_where", where)]
    shown = [f'<span class="jxa-label-{key[7:]}">{e(t(lang, key))}: {e(", ".join(vals))}</span>'
             for key, vals in parts if vals]
    return f'<p class="jxa-labels">{" · ".join(shown)}</p>' if shown else ""


def measure_html(n: int | None, measure: Measure, doc: Document, today: date, lang: str, labels_line: str = "",
                 quoted=()) -> str:
    """The full text of a measure with its document's metadata; every value escaped.

    The text comes right after the document line, so it is on screen without scrolling; the long
    lists (issuers, departments) follow it. The sentences the answer quoted (`quoted`, as the measure
    writes them) are marked where they stand.
    """
    e = html.escape
    expired = doc.expired(today)
    badge = f' <span class="jxa-expired">⚠ {e(t(lang, "expired"))}</span>' if expired else ""
    until = e(doc.valid_until.isoformat()) if doc.valid_until else e(t(lang, "no_expiry"))
    rows = [
        (t(lang, "document"), e(doc.title)),
        (t(lang, "doc_number"), e(doc.doc_number or "—")),
        (t(lang, "valid_until"), f"{until}{badge}"),
    ]
    details = [
        (t(lang, "issuer"), e(doc.issuer or "—")),
        (t(lang, "departments"), e("; ".join(measure.departments) or "—")),
    ]
    meta = "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in rows)
    more = "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in details)
    body = "".join(f"<p>{_marked(p, quoted)}</p>" for p in measure.text.split("\n") if p.strip())
    number = f'<span class="jxa-n">[{n}]</span> ' if n is not None else ""
    cls = "jxa-measure jxa-measure-expired" if expired else "jxa-measure"
    return (f'<article class="{cls}" data-measure="{e(measure.measure_id)}">'
            f'<h3>{number}{e(measure.label or measure.title)}</h3>{labels_line}<dl>{meta}</dl>'
            f'<div class="jxa-measure-text">{body}</div><dl class="jxa-more">{more}</dl></article>')


def _marked(paragraph: str, quoted) -> str:
    """The paragraph escaped, with each quoted sentence in it wrapped in <mark>."""
    spans: list[tuple[int, int]] = []
    for q in quoted:
        at = paragraph.find(q) if q else -1
        if at >= 0:
            spans.append((at, at + len(q)))
    out, pos = [], 0
    for start, end in sorted(spans):
        if start < pos:  # overlapping quotations: the part not yet marked
            start = pos
        if start >= end:
            continue
        out.append(html.escape(paragraph[pos:start]))
        out.append(f'<mark class="jxa-quoted">{html.escape(paragraph[start:end])}</mark>')
        pos = end
    out.append(html.escape(paragraph[pos:]))
    return "".join(out)


# ---------------------------------------------------------------- starter questions
_ZH_PLACE = re.compile(r"^(.+?(?:区|市|园))")


def _en_phrase(title: str) -> str:
    """'Protecting Intellectual Property Rights' -> 'protecting intellectual property rights' (acronyms kept)."""
    words = []
    for w in title.split():
        words.append(w if (w.isupper() and len(w) > 1) else w.lower())
    return " ".join(words).strip(" .;:")


def _readable(title: str, lang: str) -> bool:
    if lang == "zh":
        return 2 <= len(title) <= 8
    n = len(title.split())
    # Titles whose words ran together in extraction ("Optimizingand improvingthe",
    # "Developingleading") read badly.
    return 2 <= n <= 6 and not re.search(r"[a-z](?:and|the|of)\b|(?<=[a-z]{3})ing[a-z]+", title)


def starter_questions(documents: dict[str, Document], measures: dict[str, Measure], lang: str,
                      n: int = 4) -> list[str]:
    """Questions built from measure titles, a few per document, documents in turn.

    English questions come from English documents and Chinese from Chinese ones, so every
    suggestion names a measure that exists in the language the visitor reads.
    """
    by_doc: dict[str, list[Measure]] = {}
    for m in measures.values():
        doc = documents.get(m.doc_id)
        if doc is None or doc.language != lang or not _readable(m.title, lang):
            continue
        by_doc.setdefault(m.doc_id, []).append(m)
    if not by_doc:
        return []
    for ms in by_doc.values():
        # Substantial measures first: a long text is more likely to hold concrete support.
        ms.sort(key=lambda m: (-len(m.text), m.measure_id))
    out: list[str] = []
    seen: set[str] = set()
    queues = [by_doc[d] for d in sorted(by_doc)]
    while len(out) < n and any(queues):
        for q in queues:
            if not q or len(out) >= n:
                continue
            m = q.pop(0)
            doc = documents[m.doc_id]
            if lang == "zh":
                title = to_simplified(m.title)
                place = _ZH_PLACE.match(doc.short_title_zh)
                question = f"{place.group(1) if place else ''}在“{title}”方面有哪些支持措施？"
            else:
                question = f"What do the policies say about {_en_phrase(m.title)} in {doc.district}?"
            if question not in seen:
                seen.add(question)
                out.append(question)
    return out
