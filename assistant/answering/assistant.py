"""`Assistant`: the facade the CLI, the web layer and the evaluation use. It owns the model, the
retriever, the prompts and the answer cache; `ask_stream` makes the Turn (cleaned question,
follow-up rewrite, language, the one query plan, retrieval) and hands it to router.route, which
decides how the question ends."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator

from ..config import Settings
from ..corpus.clean import has_cjk
from ..errors import InputError
from ..library.translations import Translations
from ..retrieval.hybrid import HybridRetriever
from ..retrieval.sentences import SentenceTable
from ..retrieval.versions import in_force_first
from ..types import Answer
from .events import StreamEvent
from .inputs import clean_history, clean_question
from .language import continues_answer, detect_language, retrieval_query, standalone_query
from .llm import LLM, PrefixStateStore
from .paths.refusal import coverage_summary
from .prompting import Prompting
from .prompts import PromptSet
from .replies import Replies
from .router import route
from .turn import Services, Turn
from .verify import Evidence

__all__ = ["Assistant", "StreamEvent", "load_canary", "parse_history"]


def parse_history(raw) -> list[tuple[str, str]]:
    """Validate a history given as a list of [user, assistant] pairs."""
    if not isinstance(raw, list):
        raise InputError("history must be a list of [user, assistant] pairs")
    out = []
    for pair in raw:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise InputError("each history item must be a pair of strings [user, assistant]")
        out.append((pair[0], pair[1]))
    return out


def load_canary(folder) -> str:
    """The secret planted in the system prompt to catch leaks. Kept per installation, not per process:
    the system prompt opens every stored prefix state, so it must be the same from one start to the next.
    Random per process when the folder cannot be written."""
    path = folder / "canary"
    try:
        text = path.read_text().strip() if path.exists() else ""
        if re.fullmatch(r"JXA-[0-9a-f]{12}", text):
            return text
        folder.mkdir(parents=True, exist_ok=True)
        text = f"JXA-{secrets.token_hex(6)}"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o600)
        os.replace(tmp, path)
        return text
    except OSError:
        return f"JXA-{secrets.token_hex(6)}"


class Assistant:
    """Answers enterprise questions from the indexed policies, citing the measure behind every sentence.

    Args:
        settings: the one Settings object.
        retriever: a loaded HybridRetriever.
        llm: any LLM backend (see answering.llm); created lazily from settings when None.
        prompts: the prompt templates (default: the package's prompts).
        cache: an AnswerCache for model replies (the evaluation's), or None.

    Example:
        >>> assistant = Assistant.from_settings(Settings())
        >>> answer = assistant.ask("What support is there for protecting patents in Xuhui?")
        >>> answer.citations[0].measure.measure_id
        'xuhui-2026#II.8'
    """

    def __init__(self, settings: Settings, retriever: HybridRetriever, llm: LLM | None = None,
                 prompts: PromptSet | None = None, cache=None):
        self.settings = settings
        self.retriever = retriever
        self._llm = llm
        self.prompts = prompts or PromptSet()
        self.canary = load_canary(settings.cache_dir)
        self.prompting = Prompting(self.prompts, self.canary)
        self.replies = Replies(settings, self.canary, cache)
        self.sentences = SentenceTable(retriever.data.measures, retriever.data.documents, retriever.embedder,
                                       settings.cache_dir)
        self.translations = Translations.load(settings.seeds_dir, follow=True)
        self.services = Services(settings=settings, retriever=retriever, prompting=self.prompting,
                                 replies=self.replies, sentences=self.sentences, translations=self.translations,
                                 llm=lambda: self.llm,
                                 count=self.count_tokens, today=settings.effective_today, canary=self.canary)

    @classmethod
    def from_settings(cls, settings: Settings, llm: LLM | None = None, embedder=None) -> Assistant:
        from ..retrieval import open_retriever

        return cls(settings, open_retriever(settings, embedder), llm)

    @property
    def llm(self) -> LLM:
        """The model, loaded on first use (raises BackendError or ModelError when it cannot be)."""
        if self._llm is None:
            from .llm import get_llm

            self._llm = get_llm(self.settings)
        return self._llm

    def set_llm(self, llm: LLM) -> None:
        """Answer with this model from now on (the web layer puts the loaded one behind a deadline)."""
        self._llm = llm

    @property
    def loaded_llm(self) -> LLM | None:
        """The model if it is loaded, without loading it."""
        return self._llm

    @property
    def ready(self) -> bool:
        return self._llm is not None

    @property
    def cache(self):
        return self.replies.cache

    @cache.setter
    def cache(self, cache) -> None:
        self.replies.cache = cache

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` for the loaded model; before it loads, an estimate (Chinese ~1.3 chars/token)."""
        if self._llm is None:
            return int(len(text) / (1.3 if has_cjk(text) else 4)) + 1
        return self._llm.count_tokens(text)

    # ------------------------------------------------------------------ answering
    def ask(self, question: str, history: list[tuple[str, str]] | None = None) -> Answer:
        final = None
        for event in self.ask_stream(question, history):
            if event.kind == "final":
                final = event.answer
        assert final is not None
        return final

    def ask_stream(self, question: str, history: list[tuple[str, str]] | None = None) -> Iterator[StreamEvent]:
        turn = self.turn(question, history)
        yield from route(self.services, turn)

    def turn(self, question: str, history: list[tuple[str, str]] | None = None) -> Turn:
        """The question cleaned, made standalone, planned once and retrieved for."""
        t0 = time.perf_counter()
        question = clean_question(question, self.settings.max_question_chars)
        history = clean_history(history, self.settings.max_history_chars, self.settings.max_history_turns)
        query = standalone_query(question, history, self.retriever.places)
        plan = self.retriever.plan(query)
        searched = retrieval_query(question, query, history, self.retriever.places)
        found = self.retriever.search(searched, k=self.settings.top_k,
                                      plan=plan if searched == query else None)
        hits = in_force_first(found, query)
        turn = Turn(question=question, query=query, language=detect_language(question), plan=plan,
                    hits=tuple(hits), t0=t0, continues=continues_answer(question, query, history))
        turn.timings["retrieve_ms"] = turn.elapsed_ms()
        return turn

    # ------------------------------------------------------------------ prefix states
    def prefix_prompts(self) -> list[list[dict]]:
        """For each measure short enough to lead whole, the chat every prompt with it on top begins with;
        then the beginnings of the translation prompts."""
        out = []
        for measure in self.retriever.data.measures.values():
            if self.count_tokens(measure.text) <= self.settings.lead_tokens:
                lead = Evidence(1, measure, self.retriever.data.documents[measure.doc_id], measure.text)
                out.append(self.prompting.answer("", "", "en", [lead], prefix_only=True))
        # The translation prompt's instructions, both ways: stored, a quote's translation evaluates
        # only the quote (about half of that prompt).
        out.extend(self.prompting.translation("", language) for language in ("en", "zh"))
        return out

    def warm(self, progress=None) -> int:
        """Store the model's state after every measure's prompt prefix (see LlamaCppLLM.warm); returns
        how many were computed now. A backend that keeps no states (a remote server): 0."""
        self.sentences.prepare()  # the verifier's, whatever the backend
        llm = self.llm
        if not isinstance(llm, PrefixStateStore):
            return 0
        prompts = self.prefix_prompts()
        done = 0
        for i, messages in enumerate(prompts, 1):
            done += bool(llm.warm(messages))
            if progress:
                progress(i, len(prompts))
        return done

    def coverage_summary(self, language: str) -> str:
        return coverage_summary(self.services, language)
