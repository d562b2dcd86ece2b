"""`jxa bench publish`: how long from a new document to answers about it.

In a copy of the library (a temporary folder; the real one is never touched) the document is
published as `jxa docs add` publishes it, then the questions are asked of an assistant opened on the
new index, as a running server does after it switches index. Reported: publish seconds (parse,
label, embed the new measures, write), model load, each answer's seconds and what it cites, and the
time from publishing to the last answer (with and without the model load, which a server has done).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from ..config import Settings


def run(settings: Settings, document: Path, questions: list[str]) -> dict:
    from ..answering.assistant import Assistant
    from ..library.ingest import prepare, publish
    from ..retrieval.embedders import get_embedder

    work = Path(tempfile.mkdtemp(prefix="jxa-publish-"))
    try:
        seeds, index = work / "seeds", work / "index"
        shutil.copytree(settings.seeds_dir, seeds, ignore=shutil.ignore_patterns(".*"))
        shutil.copytree(settings.index_dir, index, ignore=shutil.ignore_patterns(".*"))
        embedder = get_embedder(settings.embedder)
        embedder.embed_queries(["warm"])  # the embedder is loaded in a running server already
        t0 = time.perf_counter()
        draft = prepare(document, seeds)
        doc, report = publish(draft, seeds, index, embedder, hnsw=settings.hnsw)
        publish_s = time.perf_counter() - t0
        local = settings.model_copy(update={"seeds_dir": seeds, "index_dir": index})
        t1 = time.perf_counter()
        assistant = Assistant.from_settings(local, embedder=embedder)
        _ = assistant.llm
        load_s = time.perf_counter() - t1
        answers = []
        t2 = time.perf_counter()
        for q in questions:
            t = time.perf_counter()
            a = assistant.ask(q)
            answers.append({"question": q, "seconds": round(time.perf_counter() - t, 1), "mode": a.mode,
                            "refused": a.refused, "cites_new_document": any(c.measure.doc_id == doc.doc_id
                                                                            for c in a.citations),
                            "cited": [c.measure.measure_id for c in a.citations], "answer": a.answer})
        answers_s = time.perf_counter() - t2
        return {"document": document.name, "doc_id": doc.doc_id, "measures": len(draft.parsed.measures),
                "embedded": report.embedded, "publish_s": round(publish_s, 1), "model_load_s": round(load_s, 1),
                "answers": answers,
                "publish_to_last_answer_s": round(publish_s + answers_s, 1),
                "publish_to_last_answer_with_model_load_s": round(publish_s + load_s + answers_s, 1)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
