"""The chats sent to the model, rendered from the prompt files: the answer, the check before a quote,
the rerank's scoring prompt and the translation of a quote."""

from __future__ import annotations

from .prompts import PromptSet
from .verify import Evidence

#: what the answer prompt tells the model to reply when the evidence does not answer the question
NOT_COVERED = "NOT_COVERED"


class Prompting:
    """Renders every chat the answer path sends, from one PromptSet and the installation's canary."""

    def __init__(self, prompts: PromptSet, canary: str):
        self.prompts = prompts
        self.system = prompts["system"].render(canary=canary)

    def answer(self, question: str, query: str, language: str, evidence: list[Evidence],
               prefix_only: bool = False) -> list[dict]:
        """The chat for one question. With `prefix_only`, the user message stops after the first
        evidence block: the shared beginning of every prompt that has this measure on top."""
        blocks = []
        for e in evidence:
            # The lead block is precomputed, so it can afford the source; the others are paid per question.
            source = f" ({e.document.doc_number or e.document.issuer})" if e.n == 1 else ""
            blocks.append(f"[{e.n}] {e.measure.label}{source}\n{e.text}")
        # Short on purpose: this tail is evaluated for every question (the system prompt already
        # states the rules); the language instruction sits last, where a small model heeds it most.
        if language == "zh":
            instruction = "请用简体中文回答，每句末尾注明来源，如[1]。"
        elif any(e.document.language == "zh" for e in evidence):
            instruction = "Answer in English, translating the Chinese faithfully; end each sentence with its source like [1]."
        else:
            instruction = "Answer in English; end each sentence with its source like [1]."
        asked = question if query == question else f"{question}\n(Earlier question, for context: {query})"
        user = self.prompts["answer"].render(evidence="\n\n".join(blocks), question=asked,
                                             language_instruction=instruction)
        if prefix_only:
            user = user[: user.index(blocks[0]) + len(blocks[0])]
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def relevance(self, messages: list[dict], reply: str, n: int, question: str) -> list[dict]:
        """The check before a quote, as a follow-up turn of the answer's own conversation."""
        return messages + [{"role": "assistant", "content": reply.strip() or "-"},
                           {"role": "user", "content": self.prompts["relevance"].render(n=str(n), question=question)}]

    def rerank(self, lead: Evidence, query: str) -> list[dict]:
        """The answer prompt's beginning with `lead` on top, then the question to be scored."""
        messages = self.answer("", "", "en", [lead], prefix_only=True)
        frame = self.prompts["rerank"].render(question=query)
        messages[-1] = dict(messages[-1], content=messages[-1]["content"] + "\n\n" + frame)
        return messages

    def prior(self, query: str) -> list[dict]:
        """The question scored with no measure shown: the baseline of the check before a quote."""
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.prompts["prior"].render(question=query)}]

    def translation(self, text: str, language: str, terms: list[tuple[str, str]] | None = None) -> list[dict]:
        """`terms`: (term in the text, its official rendering), from the glossary."""
        target = "simplified Chinese" if language == "zh" else "English"
        names = ("Render these terms as given: " + "; ".join(f"{a} = {b}" for a, b in terms) + ".") if terms else ""
        return [{"role": "user", "content": self.prompts["translate"].render(target=target, text=text, terms=names)}]

    def refusal(self, language: str, reason: str, coverage: str) -> str:
        return self.prompts["refusal_zh" if language == "zh" else "refusal_en"].render(reason=reason, coverage=coverage)
