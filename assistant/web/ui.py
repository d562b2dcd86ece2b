"""The chat in the browser and at the kiosk (Gradio), on the same Assistant as the CLI and the API.

The conversation lives in one `turns` state per visitor; the Chatbot only displays it, so what the
browser sends back is never parsed. The latest answer carries its sources as chips (Chatbot
options); a chip opens the measure's full text. Thumbs go to the consultation record of that
answer. In kiosk mode type and buttons are large and an idle timer clears everything.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gradio as gr
from gradio.components.textbox import InputHTMLAttributes

from ..errors import AssistantError, InputError
from .context import WebContext, new_session_id
from .health_check import build_section as build_health_section
from .render import chip_label, labels_html, measure_html, safe_markdown, starter_questions
from .texts import LANGUAGES, t
from .worker import END, Overloaded, Starting

log = logging.getLogger(__name__)

N_STARTERS = 4
_BY_NAME = {v: k for k, v in LANGUAGES.items()}

CSS = """
#jxa-header { align-items: center; }
#jxa-header h1 { margin: 0; font-size: 1.5rem; }
#jxa-lang { max-width: 16rem; }
#jxa-human { border-left: 4px solid var(--color-accent); padding: 0.4rem 0.8rem; background: var(--background-fill-secondary); }
#jxa-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.8rem 1rem; }
.jxa-measure h3 { margin: 0 0 0.5rem 0; }
.jxa-measure dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; margin: 0 0 0.8rem 0; }
.jxa-measure dt { font-weight: 600; color: var(--body-text-color-subdued); }
.jxa-measure dd { margin: 0; }
.jxa-measure-text { max-height: 22rem; overflow-y: auto; line-height: 1.6; border-left: 3px solid var(--border-color-primary); padding-left: 0.8rem; margin-bottom: 0.8rem; }
.jxa-measure-text mark.jxa-quoted { background: rgba(255, 214, 0, 0.35); color: inherit; padding: 0 0.1em; border-radius: 0.15em; }
.jxa-measure dl.jxa-more { font-size: 0.9em; }
.jxa-expired { background: #b42318; color: #fff; border-radius: 4px; padding: 0 0.4rem; font-weight: 700; margin-left: 0.4rem; }
.jxa-n { color: var(--color-accent); font-weight: 700; }
#jxa-starters button { white-space: normal; text-align: left; height: auto; }
#jxa-chat .options { display: flex !important; flex-wrap: wrap; gap: 0.5rem; margin: 0.4rem 0 0 0 !important;
                     justify-content: flex-start !important; }
#jxa-chat .options button { white-space: normal; text-align: left; max-width: 32rem; }
"""

KIOSK_CSS = """
:root, .gradio-container {
  --text-xxs: 14px !important; --text-xs: 16px !important; --text-sm: 19px !important; --text-md: 22px !important;
  --text-lg: 26px !important; --text-xl: 30px !important; --text-xxl: 36px !important;
  --body-text-size: 22px !important; --prose-text-size: 22px !important;
}
.gradio-container { max-width: 100% !important; }
#jxa-header h1 { font-size: 2.2rem; }
#jxa-lang label { min-height: 3.5rem; padding: 0 1.2rem; }
#jxa-chat .message { font-size: 1.3rem !important; line-height: 1.6; }
#jxa-chat .options button.option { font-size: 1.35rem !important; min-height: 3.5rem; padding: 0.6rem 1rem; }
#jxa-chat .message-buttons .icon-button { width: 3.2rem !important; height: 3.2rem !important; }
#jxa-chat .message-buttons .icon-button > div { width: 1.8rem !important; height: 1.8rem !important; }
#jxa-input textarea { font-size: 1.5rem !important; min-height: 4rem; }
#jxa-send, #jxa-new, #jxa-source-close, #jxa-comment-send, .jxa-starter { min-height: 4rem; font-size: 1.3rem !important; }
#jxa-human { font-size: 1.3rem; padding: 1rem 1.2rem; }
.jxa-measure-text { font-size: 1.35rem; max-height: 40rem; }
"""


class ChatUI:
    """Event handlers of the chat page; `build()` lays them out."""

    def __init__(self, ctx: WebContext):
        self.ctx = ctx
        self.kiosk = ctx.kiosk
        self.default_lang = ctx.settings.ui_language
        self.starters = {lang: starter_questions(self.documents, self.measures, lang, N_STARTERS)
                         for lang in LANGUAGES}

    # The index the server answers from now: it changes when staff publish a document.
    @property
    def documents(self):
        return self.ctx.assistant.retriever.data.documents

    @property
    def measures(self):
        return self.ctx.assistant.retriever.data.measures

    # ---------------------------------------------------------------- rendering
    def render_chat(self, turns: list[dict], lang: str, live: dict | None = None) -> list[dict]:
        messages: list[dict] = []
        all_turns = turns + ([live] if live else [])
        for turn in all_turns:
            messages.append({"role": "user", "content": safe_markdown(turn["q"])})
            messages.append({"role": "assistant", "content": self._answer_markdown(turn, lang)})
        if all_turns and not live:
            options = self._chips(len(all_turns) - 1, all_turns[-1], lang)
            if options:
                messages[-1]["options"] = options
        return messages

    def _answer_markdown(self, turn: dict, lang: str) -> str:
        body = safe_markdown(turn.get("a", ""))
        if turn.get("status"):
            body = (body + "\n\n" if body else "") + f"*{safe_markdown(turn['status'])}*"
        if turn.get("notice"):
            body += f"\n\n*{safe_markdown(turn['notice'])}*"
        if turn.get("sources"):
            listed = " · ".join(
                f"[{s['n']}] {safe_markdown(s['label'])}" + (f" **({t(lang, 'expired')})**" if s["expired"] else "")
                for s in turn["sources"])
            body += f"\n\n**{t(lang, 'sources')}:** {listed}"
        elif turn.get("related"):
            body += f"\n\n{t(lang, 'refusal_hint')}"
        if turn.get("human"):
            body += f"\n\n{t(lang, 'human')}"
        return body or "…"

    def _chips(self, index: int, turn: dict, lang: str) -> list[dict]:
        chips = [{"value": f"s{index}:{k}", "label": chip_label(s["n"], s["label"], s["expired"], lang)}
                 for k, s in enumerate(turn.get("sources", []))]
        chips += [{"value": f"r{index}:{k}", "label": chip_label(None, s["label"], s["expired"], lang)}
                  for k, s in enumerate(turn.get("related", []))]
        return chips

    def _source(self, n: int | None, measure_id: str, quoted: tuple[str, ...] = ()) -> dict | None:
        m = self.measures.get(measure_id)
        if m is None:
            return None
        doc = self.documents[m.doc_id]
        today = self.ctx.settings.effective_today()
        return {"n": n, "measure_id": measure_id, "label": m.label or m.title,
                "expired": doc.expired(today), "quoted": list(quoted)}

    def _labels_line(self, measure_id: str, lang: str) -> str:
        if self.ctx.health is None:
            return ""
        lib = self.ctx.health.matcher.library
        return labels_html(lib.labels.labels.get(measure_id), lib.vocabulary, lang)

    # ---------------------------------------------------------------- handlers
    def answer(self, question: str, turns: list[dict], session_id: str, lang: str, request: gr.Request | None = None):
        """Stream one answer. Yields (chat, turns, session, last_active, input box, ask button)."""
        question = (question or "").strip()
        if not question:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        # The API's per-client limit, shared: the chat's own event must be no way around it.
        client = (self.ctx.identity.key(request.headers, request.client.host if request.client else None)
                  if request is not None else "local")
        wait = self.ctx.limiter.check(client)
        session_id = session_id or new_session_id()
        history = [(x["q"], x["a"]) for x in turns if x.get("answered")]
        live: dict[str, Any] = {"q": question, "a": "", "status": t(lang, "thinking")}
        locked = gr.update(value="", interactive=False)

        def show(final: bool = False):
            box = gr.update(value="", interactive=True) if final else locked
            button = gr.update(interactive=final)
            return (self.render_chat(turns, lang, None if final else live), turns, session_id, time.time(),
                    box, button)

        def finish(text_key: str, human: bool = True, **kw):
            live.pop("status", None)
            live["a"] = t(lang, text_key, **kw)
            live["human"] = human
            turns.append(live)
            return show(final=True)

        yield show()
        if wait:
            yield finish("rate_limited", human=False, s=wait)
            return
        if self.ctx.worker.load_error:
            yield finish("unavailable")
            return
        try:
            job = self.ctx.worker.submit(question, history)
        except Starting:
            yield finish("starting")
            return
        except Overloaded as exc:
            yield finish("busy", s=exc.retry_after)
            return
        text = ""
        try:
            while True:
                event = job.next_event(timeout=0.5)
                if event is END:
                    break
                if event is None:
                    if job.started is None:
                        ahead = max(0, self.ctx.worker.busy - 1)
                        live["status"] = t(lang, "waiting", n=ahead) if ahead else t(lang, "thinking")
                        yield show()
                    continue
                if event.kind == "delta":
                    text += event.text
                    live.pop("status", None)
                    live["a"] = text
                    yield show()
                elif event.kind == "final" and event.answer is not None:
                    self._complete(live, event.answer, job, session_id)
                    turns.append(live)
                    yield show(final=True)
                    return
        except InputError as exc:
            yield finish("invalid", human=False, msg=str(exc))
            return
        except AssistantError as exc:
            log.warning("answering failed: %s", exc)
            yield finish("unavailable")
            return
        except Exception:
            log.exception("unexpected error while answering in the chat")
            yield finish("error")
            return
        finally:
            job.cancel()
        yield finish("error")  # the stream ended without a final answer

    def _complete(self, live: dict, answer, job, session_id: str) -> None:
        live.pop("status", None)
        live["a"] = answer.answer
        live["answered"] = True
        live["notice"] = answer.notice
        live["sources"] = [s for s in (self._source(c.n, c.measure.measure_id, c.quoted) for c in answer.citations)
                           if s]
        live["related"] = [s for s in (self._source(None, h.measure.measure_id) for h in answer.related) if s]
        live["human"] = answer.refused
        try:
            live["ref"] = self.ctx.records.add(answer, session_id=session_id,
                                               channel="kiosk" if self.kiosk else "web",
                                               extra_timings={"queue_ms": job.queue_ms})
        except Exception:  # the visitor still gets the answer; thumbs just have nothing to attach to
            log.exception("could not store the consultation record")
            live["ref"] = ""

    def open_source(self, turns: list[dict], lang: str, evt: gr.SelectData):
        """A chip was clicked: show that measure in full. The chip's value is checked against this
        visitor's own conversation, never used to look anything else up."""
        value = str(evt.value or "")
        try:
            kind, rest = value[0], value[1:]
            turn_i, k = (int(x) for x in rest.split(":"))
            source = turns[turn_i]["sources" if kind == "s" else "related"][k]
        except (ValueError, IndexError, KeyError, TypeError):
            return gr.skip(), gr.skip(), time.time()
        m = self.measures[source["measure_id"]]
        html = measure_html(source["n"], m, self.documents[m.doc_id], self.ctx.settings.effective_today(), lang,
                            self._labels_line(m.measure_id, lang), quoted=source.get("quoted", ()))
        return gr.update(visible=True), html, time.time()

    def like(self, turns: list[dict], lang: str, evt: gr.LikeData):
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        turn_i = index // 2
        ref = turns[turn_i].get("ref") if index % 2 == 1 and 0 <= turn_i < len(turns) else None
        if not ref or evt.liked not in (True, False):
            return gr.skip(), gr.skip(), gr.skip(), time.time()
        self.ctx.records.set_feedback(ref, 1 if evt.liked else -1)
        gr.Info(t(lang, "thanks"), duration=3)
        return gr.update(visible=True), ref, gr.update(value=""), time.time()

    def comment(self, text: str, ref: str, lang: str):
        if ref and text and text.strip():
            self.ctx.records.set_comment(ref, text[:2000])
            gr.Info(t(lang, "thanks_comment"), duration=3)
        return gr.update(visible=False), "", gr.update(value=""), time.time()

    def reset(self, lang: str):
        """A new conversation: nothing of the previous one stays on screen or in state."""
        return ([], [], new_session_id(), gr.update(visible=False), "", gr.update(visible=False), "",
                gr.update(value="", interactive=True), gr.update(interactive=True), time.time())

    def idle_check(self, last_active: float, turns: list[dict], box: str, lang: str):
        """Kiosk: clear everything once nobody has touched the screen for kiosk_idle_s."""
        untouched = not turns and not box and lang == self.default_lang
        if untouched or time.time() - (last_active or 0) < self.ctx.settings.kiosk_idle_s:
            return (gr.skip(),) * (18 + N_STARTERS)
        lang = self.default_lang
        chat, turns_, session, panel, html, row, ref, _, _, active = self.reset(lang)
        (_, radio, header, human, chat_u, box_u, send_u, new_u, close_u, comment_u, *starters) = \
            self.switch_language(LANGUAGES[lang], [])
        return (chat_u, turns_, session, panel, html, row, ref, {**box_u, "value": "", "interactive": True},
                {**send_u, "interactive": True}, active, lang, radio, header, human, new_u, close_u,
                {**comment_u, "value": ""}, *starters)

    def switch_language(self, choice: str, turns: list[dict]):
        lang = _BY_NAME.get(choice, self.default_lang)
        starters = self.starters[lang] + [""] * (N_STARTERS - len(self.starters[lang]))
        return (
            lang,
            gr.update(value=LANGUAGES[lang]),
            self._header(lang),
            t(lang, "human") + (f"\n\n{t(lang, 'kiosk_idle', s=int(self.ctx.settings.kiosk_idle_s))}"
                                if self.kiosk else ""),
            gr.update(value=self.render_chat(turns, lang), label=t(lang, "chat_label"),
                      placeholder=t(lang, "chat_placeholder")),
            gr.update(placeholder=t(lang, "input_placeholder")),
            gr.update(value=t(lang, "send")),
            gr.update(value=t(lang, "new")),
            gr.update(value=f"✕ {t(lang, 'close')}"),
            gr.update(placeholder=t(lang, "comment_label")),
            *[gr.update(value=s, visible=bool(s)) for s in starters],
        )

    def _header(self, lang: str) -> str:
        return f"# {t(lang, 'title')}\n{t(lang, 'subtitle')}"

    # ---------------------------------------------------------------- layout
    def build(self) -> gr.Blocks:
        lang0 = self.default_lang
        with gr.Blocks(title=t(lang0, "title"), analytics_enabled=False, fill_height=not self.kiosk) as demo:
            lang = gr.State(lang0)
            turns = gr.State([])
            session = gr.State("")
            last_active = gr.State(0.0)
            feedback_ref = gr.State("")

            with gr.Row(elem_id="jxa-header"):
                header = gr.Markdown(self._header(lang0), elem_id="jxa-title")
                lang_radio = gr.Radio(list(LANGUAGES.values()), value=LANGUAGES[lang0], show_label=False,
                                      elem_id="jxa-lang", container=False, scale=0,
                                      min_width=320 if self.kiosk else 220)
            human = gr.Markdown(t(lang0, "human") + (
                f"\n\n{t(lang0, 'kiosk_idle', s=int(self.ctx.settings.kiosk_idle_s))}" if self.kiosk else ""),
                elem_id="jxa-human")
            # Beside the chat on a desk screen, under it on the portrait kiosk.
            with (gr.Column() if self.kiosk else gr.Row(equal_height=False)):
                chat = gr.Chatbot(
                    value=[], label=t(lang0, "chat_label"), elem_id="jxa-chat",
                    placeholder=t(lang0, "chat_placeholder"), height="52vh" if self.kiosk else 420,
                    show_label=not self.kiosk,
                    sanitize_html=True, render_markdown=True, allow_tags=False, latex_delimiters=[],
                    feedback_options=("Like", "Dislike"), buttons=[] if self.kiosk else ["copy"],
                    autoscroll=True, layout="bubble", scale=3, min_width=420)
                with gr.Column(visible=False, elem_id="jxa-source", scale=2, min_width=360) as source_panel:
                    source_html = gr.HTML("", elem_id="jxa-source-text")
                    close_source = gr.Button(f"✕ {t(lang0, 'close')}", elem_id="jxa-source-close", size="sm")
            with gr.Row(visible=False, elem_id="jxa-feedback") as feedback_row:
                feedback_text = gr.Textbox(show_label=False, placeholder=t(lang0, "comment_label"), max_length=500,
                                           elem_id="jxa-comment", scale=6, lines=1,
                                           html_attributes=InputHTMLAttributes(autocomplete="off"))
                feedback_send = gr.Button("✓", elem_id="jxa-comment-send", scale=1)
            with gr.Row(elem_id="jxa-starters"):
                starter_buttons = []
                for i in range(N_STARTERS):
                    s = self.starters[lang0][i] if i < len(self.starters[lang0]) else ""
                    starter_buttons.append(gr.Button(s, visible=bool(s), size="sm", elem_id=f"jxa-starter-{i}",
                                                     elem_classes=["jxa-starter"]))

            with gr.Row(equal_height=True):
                box = gr.Textbox(show_label=False, placeholder=t(lang0, "input_placeholder"), lines=1, max_lines=4,
                                 max_length=self.ctx.settings.max_question_chars, scale=8, elem_id="jxa-input",
                                 autofocus=not self.kiosk,
                                 html_attributes=InputHTMLAttributes(autocomplete="off", enterkeyhint="send"))
                send = gr.Button(t(lang0, "send"), variant="primary", scale=1, elem_id="jxa-send")
                new = gr.Button(t(lang0, "new"), elem_id="jxa-new", variant="secondary", scale=1)
            if self.ctx.health is not None:
                build_health_section(self.ctx, self.ctx.health, lang0, session, lang, chat_box=box)
            # One question at a time per visitor; across visitors the InferenceWorker queues.
            # The Gradio limit only needs to let as many through as the worker's queue can hold,
            # so a visitor who would not fit gets the friendly "busy" message from the worker.
            inference = dict(concurrency_limit=1 + self.ctx.settings.queue_size, concurrency_id="answer",
                             api_visibility="private", show_progress="hidden")
            # Queued too: the route guard lets the page reach Gradio only through its queue.
            ui = dict(api_visibility="private", show_progress="hidden")
            answer_out = [chat, turns, session, last_active, box, send]
            events = [
                box.submit(self.answer, [box, turns, session, lang], answer_out, **inference),
                send.click(self.answer, [box, turns, session, lang], answer_out, **inference),
            ]
            for b in starter_buttons:
                events.append(b.click(self.answer, [b, turns, session, lang], answer_out, **inference))

            chat.option_select(self.open_source, [turns, lang], [source_panel, source_html, last_active], **ui).then(
                None, js="() => document.getElementById('jxa-source')?.scrollIntoView({block: 'nearest'})")
            close_source.click(lambda: (gr.update(visible=False), time.time()), None, [source_panel, last_active],
                               **ui)
            chat.like(self.like, [turns, lang], [feedback_row, feedback_ref, feedback_text, last_active], **ui)
            feedback_text.submit(self.comment, [feedback_text, feedback_ref, lang],
                                 [feedback_row, feedback_ref, feedback_text, last_active], **ui)
            feedback_send.click(self.comment, [feedback_text, feedback_ref, lang],
                                [feedback_row, feedback_ref, feedback_text, last_active], **ui)

            reset_out = [chat, turns, session, source_panel, source_html, feedback_row, feedback_ref, box, send,
                         last_active]
            new.click(self.reset, [lang], reset_out, cancels=events, **ui)
            chat.clear(self.reset, [lang], reset_out, cancels=events, **ui)
            lang_out = [lang, lang_radio, header, human, chat, box, send, new, close_source, feedback_text, *starter_buttons,
                        last_active]
            lang_radio.input(lambda choice, ts: (*self.switch_language(choice, ts), time.time()),
                             [lang_radio, turns], lang_out, **ui)

            if self.kiosk:
                box.input(lambda: time.time(), None, last_active, **ui)
                timer = gr.Timer(1.0)
                idle_out = [chat, turns, session, source_panel, source_html, feedback_row, feedback_ref, box, send,
                            last_active, lang, lang_radio, header, human, new, close_source, feedback_text,
                            *starter_buttons]
                timer.tick(self.idle_check, [last_active, turns, box, lang], idle_out, **ui)
        return demo


def build_ui(ctx: WebContext) -> tuple[gr.Blocks, str]:
    """The Blocks and the CSS to mount them with."""
    css = CSS + (KIOSK_CSS if ctx.kiosk else "")
    return ChatUI(ctx).build(), css
