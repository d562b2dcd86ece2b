"""A quote's translation into the asker's language, kept only when it passes its checks.

A translation may not add or drop a figure written in digits, must come back in the target language,
and may keep no word of the other one (names and acronyms aside); Chinese terms left in an English
translation are mended by the glossary or the model, English words left in a Chinese one by the
glossary only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from ...corpus.clean import has_cjk, strip_pinyin, to_simplified
from ...errors import BackendError
from ...library.translations import StoredTranslation
from ..claims import stances
from ..facts import digit_numbers, numbers, strip_markers
from ..language import detect_language
from ..prompting import NOT_COVERED
from ..turn import Services
from ..verify import ALIGN_FLOOR

log = logging.getLogger(__name__)

# A run of English words left in a Chinese translation ("企业注册和 filing事项", "高-quality企业"): words
# of four letters or more in lower case, so names and acronyms (ODI, PCT, Shibei) may stay.
ENGLISH_FRAGMENT = re.compile(r"(?<![A-Za-z])-?[a-z]{4,}(?:[ -]+[a-z]{2,})*(?![A-Za-z])")
GLUED_LATIN = re.compile(r"(?<=[\u3400-\u9fff])[a-z]{1,3}(?![A-Za-z])|(?<![A-Za-z])[a-z]{1,3}(?=[\u3400-\u9fff])")
#: most fragments of the other language a translation may have mended, and how long each may be
MEND_FRAGMENTS, MEND_CHARS = 4, 12


def to_language(text: str, language: str) -> str:
    """Chinese answers in simplified characters, with no pinyin, whatever the model mixed in."""
    if language == "zh":
        return strip_pinyin(to_simplified(text))
    return text


def translate(services: Services, text: str, language: str) -> str | None:
    """The model's translation of a quoted measure, or None when it is not kept. A failed call raises
    BackendError."""
    messages = services.prompting.translation(text, language, services.retriever.glossary.renderings(text, language))
    out = services.replies.text(services.llm(), messages, max_tokens=2 * services.count(text) + 40)
    out = strip_markers(to_language(out, language)).strip().strip("\"“”「」").strip()
    out = mend_chinese(services, out) if language == "zh" else mend_english(services, out)
    flaw = translation_flaw(text, out, language, services.canary)
    if flaw:
        log.info("translation not kept (%s): %s", flaw, out[:200])
        return None
    return out


def stored(services: Services, source: str, language: str) -> StoredTranslation | None:
    """The translation of one measure sentence made at ingestion, or None when the library holds none.
    Its text is None when no translation passed the checks, or when the stored one fails them now: a
    cheap guard against a text edited by hand since `jxa translations check`."""
    entry = services.translations.get(source, language)
    if entry is None or entry.text is None or not translation_flaw(source, entry.text, language, services.canary):
        return entry
    return replace(entry, text=None)


_ABOUT_TRANSLATING = {
    "en": re.compile(r"\btranslat(?:e|es|ed|ing|ion|ions)\b|\bhere(?:'s| is) (?:the|a|my)\b|\bthe policy text\b|"
                     r"\bthe (?:given|provided) terms?\b", re.I),
    "zh": re.compile(r"翻译|译文|以下是|如下[:：]"),
}


def translation_flaw(source: str, out: str, language: str, canary: str = "") -> str:
    """Why `out` may not stand as the translation of `source` into `language`, or "" when it may. The
    same checks hold for a translation made now and for one stored at ingestion (and perhaps edited)."""
    if not out:
        return "empty"
    # A word the glossary could not mend ("进行破产信息的 docking") is a translation left unfinished, shown
    # as if it were the measure's: none may stay (docs/decisions.md).
    if language == "zh" and ENGLISH_FRAGMENT.search(out):
        return "English words left untranslated"
    # A short lower-case piece glued to Chinese ("海ju人才") is half a word, not an abbreviation (those
    # are capitals: AI, 5G).
    if language == "zh" and any(not re.search(rf"\b{m.group(0)}\b", source, re.I) for m in GLUED_LATIN.finditer(out)):
        return "English words left untranslated"
    if language == "en" and has_cjk(out):
        return "Chinese left untranslated"
    if (canary and canary in out) or NOT_COVERED in out or "<" in out:
        return "not a translation"
    # The model talking about its task ("Here's the translation:", "To translate the policy text…"):
    # words no measure says unless its source speaks of translating too.
    if _ABOUT_TRANSLATING[language].search(out) and not _ABOUT_TRANSLATING["zh" if language == "en" else "en"].search(
            source) and not _ABOUT_TRANSLATING[language].search(source):
        return "not a translation"
    if detect_language(out) != language:
        return "not in the target language"
    # A duty, condition, cost or absolute the source does not state ("we need to" for a plan's aim) would
    # be shown as the measure's own words.
    added = stances(out, source)
    if added:
        return f"adds a{'n' if added[0][0][0] in 'aeiou' else ''} {added[0][0]} ('{added[0][1]}')"
    # Every figure it states must be the source's, and every figure the source writes in digits
    # must be in it. Small Chinese numerals in set phrases ("一批", "两个") may appear or vanish.
    if not digit_numbers(source) <= numbers(out):
        return "a figure of the source is missing"
    added = numbers(out) - numbers(source)
    if any(v > 10 or v in digit_numbers(out) for v in added):
        return "a figure not in the source"
    return ""


def alignment_flaw(services: Services, source: str, out: str) -> str:
    """"not aligned with its source" when the translation of a measure sentence is not as close to that
    measure as a generated sentence must be to the measure it cites (verify.ALIGN_FLOOR, and no other
    measure's sentence clearly closer: retrieval/sentences.py): it is shown as the measure's words, so
    it is held to what the verifier asks of a sentence: a slogan rendered word by word into something
    else fails it. "" for a sentence the library does not hold. Applied to the translations stored at
    ingestion (`jxa translations build | check`), where every one is made and checked once."""
    mids = services.sentences.measures_with(source)
    if mids and not services.sentences.aligned(out, mids, floor=ALIGN_FLOOR):
        return "not aligned with its source"
    return ""


def mend_english(services: Services, text: str) -> str:
    """The small model often leaves a Chinese term inside an English translation ("a tax营商环境
    white paper"). Each such fragment is put into English by the bilingual glossary, or else by the
    model alone, and kept only without Chinese or digits; a text with a fragment left unmended, or
    with more or longer fragments, is returned as it is (and then rejected as half-translated)."""
    fragments = list(dict.fromkeys(re.findall(r"[\u3400-\u9fff]+", text)))
    if not fragments or len(fragments) > MEND_FRAGMENTS or any(len(f) > MEND_CHARS for f in fragments):
        return text
    for fragment in fragments:
        english = services.retriever.glossary.english(to_simplified(fragment))
        if english is None:
            try:
                english = services.replies.text(services.llm(), services.prompting.translation(fragment, "en"),
                                                max_tokens=16)
            except BackendError:
                return text
            english = english.strip().strip("\"“”.。").strip()
        if not english or has_cjk(english) or re.search(r"\d", english) or len(english) > 60:
            return text
        text = re.sub(rf"\s*{re.escape(fragment)}\s*", f" {english} ", text)
    return re.sub(r" {2,}", " ", text).replace(" ,", ",").replace(" .", ".").strip()


def mend_chinese(services: Services, text: str) -> str:
    """The same for English words left inside a Chinese translation ("企业注册和 filing事项"), by the
    glossary only: the model given one English word out of its sentence renders it literally. A word
    the glossary lacks stays English, and the caller tolerates a couple of them."""
    fragments = list(dict.fromkeys(ENGLISH_FRAGMENT.findall(text)))
    if not fragments or len(fragments) > MEND_FRAGMENTS or any(len(f) > 3 * MEND_CHARS for f in fragments):
        return text
    for fragment in fragments:
        chinese = services.retriever.glossary.chinese(fragment.strip("- ").lower())
        if chinese is None:
            continue
        chinese = to_simplified(chinese)
        if not chinese or re.search(r"[A-Za-z\d]", chinese) or len(chinese) > MEND_CHARS:
            return text
        text = re.sub(rf"\s*{re.escape(fragment)}\s*", chinese, text)
    return text
