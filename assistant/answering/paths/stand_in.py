"""A measure's own sentence in place of a generated sentence that verification dropped.

When the model writes a sentence its cited measure does not support, the answer must not say it. If
the measure holds a sentence close to what the model was reaching for, that sentence is quoted
instead, verbatim and marked as a quotation (answering/quoting.py), with the same citation; in the
asker's language when the measure is in the other one, through the checked translation of
paths/translate.py (an unchecked or failed translation is never shown: the sentence is then dropped).
Nothing close enough: the sentence is dropped, as before. paths/generated.py decides when a stand-in
is used (never as the whole answer: with no generated sentence kept, the quote path answers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ...corpus.clean import to_simplified
from ...errors import BackendError
from .. import facts
from ..turn import Services, Turn
from ..verify import ALIGN_FLOOR
from .translate import stored, translate

log = logging.getLogger(__name__)

#: how close (embedding similarity) the measure's sentence must be to the dropped one: the verifier's
#: alignment floor; further off it would say something the reply was not about
STAND_IN_FLOOR = ALIGN_FLOOR


@dataclass(frozen=True)
class StandIn:
    """A measure sentence to show in place of a dropped one."""

    n: int  # the evidence number it is cited under
    source: str  # the sentence as the measure writes it
    text: str  # what is shown: the sentence (simplified, in Chinese), or its checked translation
    similarity: float  # to the dropped sentence
    translated: bool


def stand_in(services: Services, turn: Turn, sentence: str, used: set[str]) -> StandIn | None:
    """The cited measure's sentence closest to `sentence`, if close enough and not in `used` (sentences
    already quoted in this answer), shown in the asker's language; None when the sentence is dropped."""
    evidence = {e.n: e for e in turn.evidence}
    cited = [n for n in dict.fromkeys(facts.markers(sentence)) if n in evidence]
    claim = facts.strip_markers(sentence).strip()
    best: tuple[float, int, str] | None = None
    for n in cited:  # an uncited sentence names no measure to quote
        mid = evidence[n].measure.measure_id
        found = services.sentences.closest(claim, mid)
        # e5 finds most policy sentences alike: the measure must also hold the corpus's closest match.
        if found is None or not services.sentences.aligned(claim, [mid], floor=STAND_IN_FLOOR):
            continue
        source, similarity = found
        if similarity >= STAND_IN_FLOOR and source not in used and (best is None or similarity > best[0]):
            best = (similarity, n, source)
    if best is None:
        return None
    similarity, n, source = best
    if evidence[n].document.language == turn.language:
        shown = to_simplified(source) if turn.language == "zh" else source
        return StandIn(n, source, shown, similarity, translated=False)
    entry = stored(services, source, turn.language)
    if entry is not None:  # made at ingestion
        translated = entry.text
    else:
        try:
            with turn.timed("translate"):
                translated = translate(services, source, turn.language)
        except BackendError as exc:
            log.info("no stand-in: its translation failed (%s)", exc)
            return None
    if not translated:
        return None
    return StandIn(n, source, translated, similarity, translated=True)
