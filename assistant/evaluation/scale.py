"""`jxa bench library`: a generated library of many documents, built and searched in a temporary
folder beside the real documents (never mixed into the real index).

Reports the full build time, the time to add one more document (only its measures embedded), disk,
resident memory, search p50/p95 against the real index in the same run, and whether retrieval and the
evidence gate decide the real evaluation questions as they do without the distractors.
"""

from __future__ import annotations

import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

from ..answering.gate import decide
from ..config import Settings
from ..retrieval.build import build_index
from ..retrieval.embedders import get_embedder
from ..retrieval.hybrid import Glossary, HybridRetriever
from ..retrieval.store import load_index
from . import metrics as M
from .dataset import load_items

_ZH_PLACE = "澄湖岚桐枫梧溪岭泉川松柏云霞湾港屿汀澜浔渡桥沙滨"
_EN_PLACE = ["North", "South", "East", "West", "Lake", "River", "Hill", "Bay", "Oak", "Pine", "Stone", "Bridge",
             "Harbour", "Cedar", "Maple", "Willow", "Spring", "Meadow", "Brook", "Cliff"]
_ZH_TOPICS = [("租金补贴", "入驻园区的初创企业", "实际租金"), ("研发补助", "研发投入增长的企业", "研发费用增量"),
              ("人才安居", "引进高层次人才的企业", "人才租房支出"), ("上市奖励", "完成股份制改造的企业", "改制费用"),
              ("外贸促进", "进出口额增长的企业", "展位费"), ("数字化改造", "实施智能化改造的企业", "设备投入"),
              ("绿色低碳", "完成节能改造的企业", "节能设备投资"), ("品牌建设", "获得品牌认定的企业", "品牌推广费用"),
              ("融资担保", "获得担保贷款的中小企业", "担保费"), ("会展活动", "举办行业展会的企业", "场地费用")]
_EN_TOPICS = [("Rent support", "start-ups moving into an incubator", "the rent"),
              ("R&D grants", "enterprises raising their R&D spending", "the increase in R&D spending"),
              ("Talent housing", "enterprises recruiting senior talents", "the rent of talent apartments"),
              ("Listing awards", "enterprises completing a shareholding reform", "the cost of the reform"),
              ("Export promotion", "enterprises growing their exports", "the booth fees"),
              ("Smart manufacturing", "enterprises upgrading production lines", "the equipment investment"),
              ("Energy saving", "enterprises completing energy-saving retrofits", "the retrofit investment"),
              ("Brand building", "enterprises recognised for their brands", "the promotion costs"),
              ("Loan guarantees", "small firms with guaranteed loans", "the guarantee fee"),
              ("Trade fairs", "enterprises hosting industry fairs", "the venue costs")]
_ZH_DEPTS = ["区科委", "区财政局", "区商务委", "区经委", "区人社局", "区发展改革委", "区金融办"]
_EN_DEPTS = ["District Science Commission", "District Finance Bureau", "District Commerce Commission",
             "District Human Resources Bureau"]


def _zh_document(rng: random.Random, n: int, measures: int) -> str:
    place = "".join(rng.sample(_ZH_PLACE, 2)) + "区"
    year = rng.choice([2024, 2025, 2026])
    lines = [f"{place}人民政府办公室关于印发《{place}促进产业发展若干措施（第{n}批）》的通知",
             f"{place[0]}府办发〔{year}〕{n}号", "各街道、各部门：", "现将有关措施印发给你们，请认真贯彻执行。",
             f"{place}人民政府办公室", f"{year}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日"]
    for i in range(1, measures + 1):
        topic, who, base = rng.choice(_ZH_TOPICS)
        lines.append(f"第{_cn(i)}条【{topic}】对{place}{who}，按照{base}的{rng.choice([10, 20, 30, 50])}%给予补贴，"
                     f"每家企业每年最高{rng.randint(5, 500)}万元。（责任单位：{rng.choice(_ZH_DEPTS)}）")
    lines.append(f"本措施自印发之日起施行，有效期{rng.choice([2, 3, 5])}年。")
    return "\n".join(lines) + "\n"


def _en_document(rng: random.Random, n: int, measures: int) -> str:
    place = rng.choice(_EN_PLACE) + rng.choice(["field", "ford", "wick", "haven", "mere", "gate"])
    year = rng.choice([2024, 2025, 2026])
    lines = [f"{place} District People's Government", f"{place[:2].upper()}DG [{year}] No. {n}",
             f"Several Measures of {place} District on Supporting Enterprises (Batch {n})"]
    per_section = max(1, measures // 3)
    for i in range(1, measures + 1):
        if (i - 1) % per_section == 0 and (i - 1) // per_section < 3:
            lines.append(f"{['I', 'II', 'III'][(i - 1) // per_section]}. Support Area {(i - 1) // per_section + 1}")
        topic, who, base = rng.choice(_EN_TOPICS)
        lines.append(f"{i}. {topic}. In {place} District, {who} shall receive a subsidy of "
                     f"{rng.choice([10, 20, 30, 50])}% of {base}, up to RMB {rng.randint(1, 50) * 100_000:,} per year.")
        lines.append(f"(Responsible department: {place} {rng.choice(_EN_DEPTS)})")
    lines.append(f"These Measures shall come into effect on January 1, {year} and be valid for three years.")
    lines += [f"{place} District People's Government", f"December {rng.randint(1, 28)}, {year - 1}"]
    return "\n".join(lines) + "\n"


def _cn(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


def generate_library(folder: Path, seeds_dir: Path, documents: int, measures_per_doc: int, seed: int = 0) -> int:
    """The real seeds plus `documents` generated ones (half Chinese, half English) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in seeds_dir.iterdir():
        if path.is_file():
            shutil.copy(path, folder / path.name)
    rng = random.Random(seed)
    for n in range(documents):
        text = (_zh_document if n % 2 == 0 else _en_document)(rng, n + 1, measures_per_doc)
        (folder / f"g{n:05d}.txt").write_text(text, encoding="utf-8")
    return documents * measures_per_doc


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _decisions(retriever: HybridRetriever, items, top_k: int) -> dict:
    """Recall of the gold measure and the gate's decision for each evaluation item."""
    vocab = retriever.known_words
    r1, r5, gate_ok = [], [], []
    for item in items:
        hits = retriever.search(item.question, k=max(top_k, 5))
        ranked = [h.measure.measure_id for h in hits]
        covered = decide(item.question, retriever.plan(item.question), hits[:top_k], vocab).covered
        if item.answerable and item.gold:
            r1.append(M.recall_at(ranked, set(item.gold), 1))
            r5.append(M.recall_at(ranked, set(item.gold), 5))
        gate_ok.append(covered == item.answerable)
    return {"recall@1": sum(r1) / len(r1), "recall@5": sum(r5) / len(r5), "gate agrees": sum(gate_ok) / len(gate_ok),
            "per_item_gate": gate_ok}


def _latency(retriever: HybridRetriever, queries: list[str], rounds: int) -> tuple[float, float]:
    retriever.search(queries[0], k=5)
    times = []
    for _ in range(rounds):
        for q in queries:
            t = time.perf_counter()
            retriever.search(q, k=5)
            times.append((time.perf_counter() - t) * 1000)
    return M.percentile(times, 0.5), M.percentile(times, 0.95)


def run(settings: Settings, documents: int, measures_per_doc: int, rounds: int = 2, keep: Path | None = None,
        questions: Path = Path("eval/questions.jsonl"), progress=None) -> dict:
    embedder = get_embedder(settings.embedder)
    work = Path(tempfile.mkdtemp(prefix="jxa-scale-")) if keep is None else keep
    try:
        library, index = work / "library", work / "index"
        generated = generate_library(library, settings.seeds_dir, documents, measures_per_doc)
        t0 = time.perf_counter()
        report = build_index(library, index, embedder, hnsw=settings.hnsw, progress=progress)
        build_s = time.perf_counter() - t0
        extra = library / "g99999.txt"
        extra.write_text(_zh_document(random.Random(99), 99999, measures_per_doc), encoding="utf-8")
        t0 = time.perf_counter()
        added = build_index(library, index, embedder, hnsw=settings.hnsw)
        add_s = time.perf_counter() - t0
        glossary = Glossary.load(settings.seeds_dir)
        kw = {"rrf_k": settings.rrf_k, "candidates": settings.candidates, "district_boost": settings.district_boost}
        big = HybridRetriever(load_index(index, embedder.id), embedder, glossary, **kw)
        real = HybridRetriever(load_index(settings.index_dir, embedder.id), embedder, glossary, **kw)
        items = [i for i in load_items(questions) if not i.history
                 and all(g.split("#")[0] in real.data.documents for g in i.gold)]
        queries = [i.question for i in items[:40]]
        real_lat, big_lat = _latency(real, queries, rounds), _latency(big, queries, rounds)
        real_q, big_q = _decisions(real, items, settings.top_k), _decisions(big, items, settings.top_k)
        changed = sum(a != b for a, b in zip(real_q.pop("per_item_gate"), big_q.pop("per_item_gate"), strict=True))
        return {
            "documents": report.documents, "measures": report.measures, "generated_measures": generated,
            "chunks": report.chunks, "embedder": embedder.id, "build_s": round(build_s, 1),
            "add_one_document_s": round(add_s, 1), "add_embedded_chunks": added.embedded,
            "index_mb": round(_folder_bytes(index) / 1e6, 1),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "search_ms": {"real": {"p50": round(real_lat[0], 2), "p95": round(real_lat[1], 2)},
                          "with_distractors": {"p50": round(big_lat[0], 2), "p95": round(big_lat[1], 2)},
                          "p50_ratio": round(big_lat[0] / real_lat[0], 2)},
            "quality": {"items": len(items), "real": real_q, "with_distractors": big_q,
                        "gate_decisions_changed": changed},
        }
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
