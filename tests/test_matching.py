"""The policy health check: labels made at ingestion, profiles, the match, the report, the records."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from datetime import date
from pathlib import Path

import pytest

from assistant.errors import ConfigError, InputError
from assistant.evaluation import match_eval
from assistant.matching.labels import LABELS_FILE, make_labels
from assistant.matching.match import APPLIES, DOES_NOT_APPLY, MAY_APPLY
from assistant.matching.profile import Profile, from_sentence
from assistant.matching.report import render_html
from assistant.matching.service import Matcher
from assistant.matching.vocabulary import load_vocabulary
from assistant.types import Document, Measure

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 26)


@pytest.fixture(scope="module")
def vocab():
    return load_vocabulary(ROOT / "seeds")


@pytest.fixture
def matcher(fake_settings):
    return Matcher(fake_settings)


def _doc(district="Minhang", valid_until=None, language="en") -> Document:
    return Document("test-doc", "t.txt", "0", language, "Minhang Test Measures", "Test", "测试", district,
                    "Minhang District Commerce Commission", None, date(2026, 1, 1), valid_until, None)


def _measure(text: str, title="Supporting enterprises", departments=()) -> Measure:
    return Measure("test-doc#1", "test-doc", "1", title, (), text, tuple(departments), "Test, Measure 1")


# ---------------------------------------------------------------- labels
def test_labels_of_a_new_document_come_from_its_words(vocab):
    """A document the vocabulary never saw: kinds, beneficiaries, place and conditions found by rule."""
    text = ("Eligible small and medium-sized enterprises in Hongqiao may receive rent subsidies for office space. "
            "We shall crack down on unfair competition and rectify the market order. "
            "Banks shall provide loans to high-tech enterprises.")
    lab = make_labels(_measure(text), _doc(), vocab)
    first, second = lab.offers
    assert {"funding", "space"} <= set(first.kinds)
    assert ("size", "sme") in {(b.category, b.key) for b in first.beneficiaries}
    assert first.conditional is not None and first.conditional.quote.lower() == "eligible"
    assert set(first.districts) == {"Minhang"}  # Hongqiao lies partly in Minhang, the document's district
    assert "financing" in second.kinds
    assert ("qualification", "high_tech") in {(b.category, b.key) for b in second.beneficiaries}
    # The enforcement sentence offers nothing; every quote is the measure's own words.
    assert all("crack down" not in o.quote for o in lab.offers)
    for t in lab.terms:
        assert text[t.start:t.end] == t.quote if t.start >= 0 else t.quote in "Supporting enterprises"


def test_chinese_traditional_text_keeps_its_offsets(vocab):
    text = "聚焦初創企業強化要素供給，加強創業啟動資金、投融資支持。"
    lab = make_labels(_measure(text, title="創業支持"), _doc(district="Xuhui", language="zh"), vocab)
    offer = next(o for o in lab.offers if o.start >= 0)
    assert {"funding", "financing"} <= set(offer.kinds)
    assert [(b.key, b.quote) for b in offer.beneficiaries] == [("startup", "初創企業")]


def test_every_stored_label_quotes_its_measure(fake_settings, fake_index_dir):
    """The index build wrote labels.json; each label's quote is in its measure (or title)."""
    assert (fake_index_dir / LABELS_FILE).exists()
    lib = Matcher(fake_settings).library
    assert set(lib.labels.labels) == set(lib.measures)
    n = 0
    for mid, lab in lib.labels.labels.items():
        m = lib.measures[mid]
        for t in lab.terms:
            assert (m.text[t.start:t.end] == t.quote) if t.start >= 0 else (t.quote in m.title), (mid, t)
            n += 1
        for o in lab.offers:
            assert o.quote in m.text or o.quote == m.title
    assert n > 500


def test_staff_correction_survives_reindexing(seeds_copy, tmp_path, fake_settings):
    from assistant.retrieval.build import build_index
    from tests.conftest import FakeEmbedder

    mid = "jingan-2026#III.20"
    (seeds_copy / "label-overrides.json").write_text(json.dumps({"measures": {mid: {
        "remove_kinds": ["funding"], "note": "subsidies are in a separate notice"}}}), encoding="utf-8")
    index = tmp_path / "index"
    settings = fake_settings.model_copy(update={"seeds_dir": seeds_copy, "index_dir": index})
    for force in (False, True):
        build_index(seeds_copy, index, FakeEmbedder(), force=force)
        lab = Matcher(settings).library.labels.labels[mid]
        assert lab.corrected and "funding" not in lab.kinds and "financing" in lab.kinds
        assert lab.notes == ("subsidies are in a separate notice",)
    # A correction quoting words the measure does not have is refused, not applied silently.
    (seeds_copy / "label-overrides.json").write_text(json.dumps({"measures": {mid: {
        "add_offer": {"quote": "free money for all", "kinds": ["funding"]}}}}), encoding="utf-8")
    with pytest.raises(ConfigError, match="not in the measure"):
        Matcher(settings).library  # noqa: B018


def test_vocabulary_edit_relabels_at_the_next_build(seeds_copy, tmp_path):
    from assistant.matching.labels import read_stored
    from assistant.retrieval.build import build_index
    from tests.conftest import FakeEmbedder

    index = tmp_path / "index"
    build_index(seeds_copy, index, FakeEmbedder())
    before = read_stored(index)
    from assistant.matching.vocabulary import vocabulary_path

    data = json.loads(vocabulary_path(seeds_copy).read_text(encoding="utf-8"))  # the shipped one
    path = seeds_copy / "label-vocabulary.json"  # the library's own copy replaces it
    data["support_kinds"]["space"]["terms"].append("chambers of commerce")
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    build_index(seeds_copy, index, FakeEmbedder())  # the index is current; only the labels change
    after = read_stored(index)
    assert after["jingan-2026#III.20"]["vocabulary"] != before["jingan-2026#III.20"]["vocabulary"]
    assert "space" in after["jingan-2026#III.20"]["kinds"] and "space" not in before["jingan-2026#III.20"]["kinds"]


# ---------------------------------------------------------------- profiles
def test_profile_input_is_checked_where_it_enters():
    with pytest.raises(InputError, match="employees"):
        Profile.from_json({"employees": "thirty"})
    with pytest.raises(InputError, match="unknown profile field"):
        Profile.from_json({"distrct": "Xuhui"})
    with pytest.raises(InputError, match="founded_year"):
        Profile.from_json({"founded_year": 3000}, today=TODAY)
    with pytest.raises(InputError, match="longer than"):
        Profile.from_json({"needs": "x" * 5000})
    p = Profile.from_json({"district": " Xuhui ", "qualifications": []})
    assert p.district == "Xuhui" and p.qualifications == () and p.known("qualifications")
    assert not p.known("employees")


def test_profile_from_a_sentence(vocab):
    p = from_sentence("We are a 30-person AI start-up in Xuhui, two years old, looking for space and financing",
                      vocab, TODAY)
    assert (p.district, p.employees, p.founded_year) == ("Xuhui", 30, 2024)
    assert "AI" in p.industry and p.qualifications is None and "financing" in p.needs
    z = from_sentence("我们是一家静安区的区块链企业，50人，2019年成立，需要融资", vocab, TODAY)
    assert (z.district, z.employees, z.founded_year, z.lang) == ("Jing'an", 50, 2019, "zh")


def test_needs_are_read_by_their_longest_terms(vocab):
    """A term inside a longer one of another kind is not a second need."""
    from assistant.matching.profile import facts

    def kinds(needs: str) -> set[str]:
        return set(facts(Profile(needs=needs), vocab, TODAY).need_kinds or ())

    assert kinds("loan interest subsidies") == {"funding"}
    assert kinds("a bank loan and office space") == {"financing", "space"}
    assert kinds("work permits for foreign staff") == {"talent"}


# ---------------------------------------------------------------- the match
def _levels(check) -> dict[str, str]:
    return {r.measure.measure_id: r.level for r in check.results}


def test_every_measure_is_judged_and_grouped(matcher):
    check = matcher.check(Profile(district="Xuhui", industry="AI software", employees=30, founded_year=2024,
                                  qualifications=(), needs="office space and financing"))
    assert len(check.results) == len(matcher.library.measures)
    order = [r.level for r in check.results]
    assert order == sorted(order, key=[APPLIES, MAY_APPLY, DOES_NOT_APPLY].index)
    applies = check.level(APPLIES)
    assert applies and all(r.document.district in ("Xuhui", "Shanghai") for r in applies)
    assert any(r.measure.measure_id == "xuhui-2026#III.11" for r in applies[:5])  # start-up support
    for r in applies:
        assert all(c.met is True for c in r.conditions)
        assert r.departments or r.document.issuer


def test_expired_and_other_district_are_never_offered(matcher):
    check = matcher.check(Profile(district="Jing'an", industry="software", employees=50, founded_year=2015,
                                  qualifications=(), needs="financing and talent"))
    for r in check.results:
        if r.document.doc_id == "jingan-industry-2024":  # valid until 2025-12-31
            assert r.level == DOES_NOT_APPLY and r.expired and r.reason.startswith("Expired")
        if r.document.doc_id == "xuhui-2026":
            assert r.level == DOES_NOT_APPLY and r.reason_code == "other_district"
    outside = matcher.check(Profile(district="Haidian, Beijing", needs="financing"))
    assert not outside.level(APPLIES) and not outside.level(MAY_APPLY)


def test_unknown_required_field_is_never_a_confident_applies(matcher):
    nowhere = matcher.check(Profile(industry="AI", employees=10, founded_year=2025, needs="financing"))
    assert not nowhere.level(APPLIES) and nowhere.level(MAY_APPLY)
    for r in nowhere.level(MAY_APPLY):
        assert any(c.met is None for c in r.conditions)
    no_needs = matcher.check(Profile(district="Xuhui", industry="AI", employees=10, founded_year=2025,
                                     qualifications=()))
    assert not no_needs.level(APPLIES)
    # SME-only financing subsidies: a firm of unknown size may apply for them; the same measure's
    # financing services, offered to every enterprise, apply.
    small = Profile(district="Jing'an", industry="software", founded_year=2010, qualifications=(),
                    needs="subsidies and interest discounts")
    assert _levels(matcher.check(small))["jingan-2026#III.20"] == MAY_APPLY
    large = Profile(**{**small.__dict__, "employees": 2000})
    assert _levels(matcher.check(large))["jingan-2026#III.20"] == DOES_NOT_APPLY
    financing = Profile(**{**small.__dict__, "needs": "financing"})
    assert _levels(matcher.check(financing))["jingan-2026#III.20"] == APPLIES


_FIELD_CATEGORIES = {"industry": ("industry",), "employees": ("size",), "founded_year": ("stage",),
                     "qualifications": ("qualification", "type")}


def test_a_condition_named_outside_the_offer_keeps_an_unknown_field_uncertain(vocab):
    """Whoever a measure names, in any sentence, may be whom it is for: a profile with that field
    unknown never gets a confident 'applies', for each field in turn; known, the verdict is confident."""
    from assistant.matching.labels import LabelSet
    from assistant.matching.match import health_check

    texts = {
        "qualification": "Upgrade the one-stop window for export declarations. "
                         "Strengthen the cultivation of high-tech enterprises.",
        "size": "Offer policy consultation at the service centre. Small and medium-sized enterprises are a focus.",
        "stage": "Provide low-cost office space in the park. The park is open to start-ups first.",
        "industry": "Banks shall offer loans through the platform. Software companies are encouraged to join.",
    }
    doc = _doc()
    measures = {f"test-doc#{k}": Measure(f"test-doc#{k}", "test-doc", k, "Support", (), t, (), f"Test, {k}")
                for k, t in texts.items()}
    labels = {mid: make_labels(m, doc, vocab) for mid, m in measures.items()}
    library = LabelSet(labels, "", "v")
    known = dict(district="Minhang", industry="software", employees=20, founded_year=2015,
                 qualifications=("high-tech enterprise",), needs="export, consultation, office space and loans")
    check = health_check(Profile(**known), {doc.doc_id: doc}, measures, library, vocab, TODAY)
    assert set(_levels(check).values()) == {APPLIES}  # every field known: each measure applies
    tried = 0
    for field, categories in _FIELD_CATEGORIES.items():
        profile = Profile(**{**known, field: None})
        levels = _levels(health_check(profile, {doc.doc_id: doc}, measures, library, vocab, TODAY))
        for mid, lab in labels.items():
            if any(t.category in categories for t in lab.terms):
                tried += 1
                assert levels[mid] == MAY_APPLY, (field, mid)
    assert tried >= len(texts)


def _judge_inline(vocab, texts: dict[str, str], profile: Profile) -> dict[str, str]:
    from assistant.matching.labels import LabelSet
    from assistant.matching.match import health_check

    doc = _doc()
    measures = {f"test-doc#{k}": Measure(f"test-doc#{k}", "test-doc", k, "Support", (), t, (), f"Test, {k}")
                for k, t in texts.items()}
    labels = LabelSet({mid: make_labels(m, doc, vocab) for mid, m in measures.items()}, "", "v")
    return {k.split("#", 1)[1]: v for k, v in _levels(health_check(profile, {doc.doc_id: doc}, measures, labels,
                                                                    vocab, TODAY)).items()}


def test_an_industry_named_as_a_means_does_not_make_the_industry_a_condition(vocab):
    """With the industry unknown, a measure for an industry ("the UHD video industry", "人工智能产业")
    may apply; one that only uses a technology ("by using big data") or names an actor (banks) applies."""
    texts = {
        "target": "Provide financing services for the ultra-high-definition video industry.",
        "target_zh": "为人工智能产业提供融资服务。",
        "means": "Improve the accuracy of financing services by using big data, block-chain and other technologies.",
        "actor": "加强与银行的系统对接，为企业提供融资服务。",
    }
    profile = Profile(district="Minhang", employees=20, founded_year=2015, qualifications=(), needs="financing")
    levels = _judge_inline(vocab, texts, profile)
    assert levels == {"target": MAY_APPLY, "target_zh": MAY_APPLY, "means": APPLIES, "actor": APPLIES}
    known = _judge_inline(vocab, texts, Profile(**{**profile.__dict__, "industry": "UHD video production"}))
    assert known["target"] == APPLIES


def test_a_beneficiary_named_once_in_an_offer_restricts_that_offer_only(vocab):
    """Named once, in the offer of subsidies, SMEs are that offer's condition: the measure's open loans
    apply to a firm of unknown size. Named in every sentence, start-ups are whom the measure is for."""
    texts = {
        "once": "Small and medium-sized enterprises receive rent subsidies. Banks shall offer loans to enterprises.",
        "throughout": "Start-ups receive rent subsidies. Banks shall offer loans. Start-ups get training.",
    }
    base = dict(district="Minhang", industry="software", qualifications=())
    loans = _judge_inline(vocab, texts, Profile(**base, needs="loans"))
    assert loans == {"once": APPLIES, "throughout": MAY_APPLY}
    subsidies = _judge_inline(vocab, texts, Profile(**base, needs="subsidies"))
    assert subsidies == {"once": MAY_APPLY, "throughout": MAY_APPLY}


def test_fast_growth_is_read_from_the_qualifications(vocab):
    """An offer for fast-growing enterprises applies to a gazelle, and may apply (asking for the
    qualifications, not the year founded) to one that does not say."""
    texts = {"growth": "Provide loan interest subsidies to gazelle enterprises."}
    base = dict(district="Minhang", industry="software", employees=50, founded_year=2015, needs="subsidies")
    assert _judge_inline(vocab, texts, Profile(**base, qualifications=("gazelle enterprise",))) == {"growth": APPLIES}
    assert _judge_inline(vocab, texts, Profile(**base, qualifications=())) == {"growth": MAY_APPLY}
    from assistant.matching.labels import LabelSet
    from assistant.matching.match import health_check

    doc, m = _doc(), _measure(texts["growth"])
    check = health_check(Profile(**base, qualifications=()), {doc.doc_id: doc}, {m.measure_id: m},
                         LabelSet({m.measure_id: make_labels(m, doc, vocab)}, "", "v"), vocab, TODAY)
    assert "qualifications held" in check.results[0].reason and "year founded" not in check.results[0].reason


def test_report_is_escaped_and_dated(matcher):
    evil = "<script>alert(1)</script>"
    check = matcher.check(Profile(district="Xuhui", industry=evil, needs="financing"))
    page = render_html(check, full_rest=True)
    assert evil not in page and "&lt;script&gt;" in page
    assert check.made_on.isoformat() in page and check.library_version in page
    zh = render_html(matcher.check(Profile(district="徐汇区", needs="需要融资")))
    assert "政策体检报告" in zh and "适用" in zh


def test_cli_json_is_the_api_response(fake_settings, tmp_path):
    """`jxa match --json PROFILE.json` and `POST /api/match` give the same result for one profile."""
    from fastapi.testclient import TestClient

    from assistant.answering.assistant import Assistant
    from assistant.cli import main
    from assistant.web.app import create_app

    profile = {"district": "Xuhui", "industry": "AI", "employees": 12, "founded_year": 2025, "qualifications": [],
               "needs": "space and financing"}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile), encoding="utf-8")
    out = io.StringIO()
    flags = ["--seeds-dir", str(fake_settings.seeds_dir), "--index-dir", str(fake_settings.index_dir),
             "--embedder", "fake-hash", "--llm", "fake", "--today", "2026-11-26"]
    with redirect_stdout(out):
        assert main(["match", str(path), "--json", *flags]) == 0
    cli = json.loads(out.getvalue())
    app = create_app(fake_settings, Assistant.from_settings(fake_settings), load_model=False)
    with TestClient(app) as client:
        r = client.post("/api/match", json=profile)
        assert r.status_code == 200
        assert r.json() == cli
        assert set(cli) == {"profile", "results"}
        assert set(cli["results"][0]) == {"measure_id", "doc_id", "label", "level", "reason", "conditions",
                                          "departments", "expired"}
        bad = client.post("/api/match", json={"employees": -3})
        assert bad.status_code == 422 and "employees" in bad.json()["error"]["message"]
        report = client.get(f"/report/{r.headers['X-Report-Ref']}")
        assert report.status_code == 200 and "Policy health check" in report.text
        assert client.get("/report/not-a-ref").status_code == 404
        said = client.post("/api/match", json={"text": "We are a 12-person AI start-up in Xuhui, looking for "
                                                       "space and financing"})
        assert said.status_code == 200 and said.json()["profile"]["district"] == "Xuhui"


# ---------------------------------------------------------------- records and insights
def test_health_checks_are_recorded_redacted_and_empty_ones_are_gaps(matcher, tmp_path):
    from assistant.insights import compute
    from assistant.records import Records

    records = Records(tmp_path / "r.sqlite3")
    full = matcher.check(Profile(district="Xuhui", needs="financing, call 13812345678"))
    empty = matcher.check(Profile(district="Suzhou", industry="textiles", needs="financing"))
    records.add_health_check(full, session_id="s1")
    records.add_health_check(empty, session_id="s2")
    records.add_health_check(empty, session_id="s3")
    rows = list(records.iter())
    assert all(r.mode == "health_check" for r in rows)
    assert "13812345678" not in rows[0].question and "[phone]" in rows[0].question
    assert json.loads(json.dumps(rows[0].citations))[0]["level"] in (APPLIES, MAY_APPLY)
    ins = compute(records.iter())
    assert ins.health_checks == 3 and not ins.gaps  # not mixed with unanswered questions
    assert len(ins.health_gaps) == 1 and ins.health_gaps[0].count == 2 and "Suzhou" in ins.health_gaps[0].profile


# ---------------------------------------------------------------- the evaluation set
def test_profiles_gold_follows_the_annotations():
    annotations = json.loads((ROOT / match_eval.ANNOTATIONS).read_text(encoding="utf-8"))
    items = match_eval.load_profiles(ROOT / match_eval.PROFILES)
    assert len(items) >= 60
    tests = [i for i in items if i.split == "test"]
    assert abs(len(tests) - len(items) / 3) <= 1
    assert {i.language for i in items} == {"en", "zh"}
    assert any(i.gold_facts["district"] == "elsewhere" for i in items)
    assert any(i.gold_facts["district"] is None for i in items)
    for it in items:
        gold = match_eval.gold_levels(it.gold_facts, annotations)
        assert sorted(m for m, lv in gold.items() if lv == "applies") == sorted(it.applies), it.id
        assert sorted(m for m, lv in gold.items() if lv == "may_apply") == sorted(it.may_apply), it.id


def test_scores_on_a_tiny_set(matcher):
    """The metrics move the right way: a perfect gold scores 1, an impossible one 0."""
    annotations = json.loads((ROOT / match_eval.ANNOTATIONS).read_text(encoding="utf-8"))
    profile = {"district": "Xuhui", "industry": "AI", "employees": 10, "founded_year": 2025, "qualifications": [],
               "needs": "financing"}
    check = matcher.check(Profile.from_json(profile))
    mine = tuple(r.measure.measure_id for r in check.level(APPLIES))
    facts = {"district": "Xuhui", "industries": ["ai"], "size": "sme", "startup": True, "growth": None,
             "qualifications": [], "types": [], "types_known": True, "needs": ["financing"]}
    same = match_eval.ProfileItem("a", "test", "en", profile, facts, mine, ())
    wrong = match_eval.ProfileItem("b", "test", "en", profile, facts, ("jingan-2026#I.1",), ())
    r = match_eval.score([same, wrong], matcher, annotations)
    rows = {x["id"]: x for x in r["rows"]}
    assert rows["a"]["p5"] == 1.0 and rows["a"]["r10"] == 1.0
    assert rows["b"]["p5"] == 0.0 and rows["b"]["r10"] == 0.0
