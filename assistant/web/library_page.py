"""/insights/library: staff add and remove policy documents, behind the staff password.

An upload is parsed and shown as a preview (the same text `jxa docs add --dry-run` prints, rendered as
text), kept in a staging folder under a random token; publishing it stores it in the library, rebuilds
the index and switches the running server to the new index between two questions. Everything the
document says is shown escaped: a policy file is data, never markup.
"""

from __future__ import annotations

import html
import logging
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ..corpus.read import FORMATS, MAX_BYTES
from ..errors import AssistantError
from ..library.commands import render_document
from ..library.ingest import find, prepare, publish, remove, status
from ..retrieval.build import parse_seeds
from .context import WebContext
from .reload import IndexWatcher

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def build_router(ctx: WebContext, authorized: Callable[[Request], bool],
                 page: Callable[..., HTMLResponse], login: Callable[[], HTMLResponse]) -> APIRouter:
    """The library routes, sharing the insights page's staff login (`authorized`) and page frame."""
    router = APIRouter()
    staging = ctx.settings.cache_dir / "library-staging"

    def frame(body: str, status_code: int = 200) -> HTMLResponse:
        nav = '<nav><a href="/insights">Demand insights</a><a href="/insights/library">Policy library</a></nav>'
        return page("Policy library", nav + body, status_code)

    def listing(message: str = "", error: str = "") -> HTMLResponse:
        library = parse_seeds(ctx.settings.seeds_dir)
        docs = [p.document for p in library]
        today = ctx.settings.effective_today()
        rows = "".join(
            f"<tr><td><code>{html.escape(p.document.doc_id)}</code></td><td>{html.escape(p.document.title)}</td>"
            f"<td class='n'>{len(p.measures)}</td><td>{html.escape(str(p.document.issued or '-'))}</td>"
            f"<td>{html.escape(status(p.document, docs, today))}</td>"
            f"<td><form class='inline' method='post' action='/insights/library/remove'>"
            f"<input type='hidden' name='doc_id' value='{html.escape(p.document.doc_id, quote=True)}'>"
            f"<button type='submit'>Remove</button></form></td></tr>" for p in library)
        note = f'<p class="ok" id="library-message">{html.escape(message)}</p>' if message else ""
        err = f'<p class="err" id="library-error">{html.escape(error)}</p>' if error else ""
        accept = ",".join(sorted(FORMATS))
        body = (f"<h1>Policy library</h1>{note}{err}"
                "<h2>Add a document</h2><form method='post' action='/insights/library/preview' "
                "enctype='multipart/form-data'><input type='file' id='document' name='document' "
                f"accept='{accept}' required> <button type='submit' id='preview'>Preview</button></form>"
                f"<h2>Documents ({len(library)})</h2><table><tr><th>Id</th><th>Title</th><th>Measures</th>"
                f"<th>Issued</th><th>Status</th><th></th></tr>{rows}</table>")
        return frame(body, 400 if error else 200)

    def follow_index(request: Request) -> None:
        """Switch the running server to the index just written (between two questions)."""
        watcher = getattr(request.app.state, "index_watcher", None) or IndexWatcher(ctx, 0)
        watcher.check()

    def staged(token: str) -> Path | None:
        if not _TOKEN.match(token):
            return None
        folder = staging / token
        files = list(folder.iterdir()) if folder.is_dir() else []
        return files[0] if len(files) == 1 else None

    @router.get("/insights/library", response_class=HTMLResponse)
    def library_page(request: Request) -> Response:
        if not authorized(request):
            return login()
        return listing()

    @router.post("/insights/library/preview", response_class=HTMLResponse)
    async def preview(request: Request) -> Response:
        if not authorized(request):
            return login()
        try:
            form = await request.form(max_files=1, max_fields=5, max_part_size=MAX_BYTES)
        except Exception:
            return listing(error="The upload could not be read; choose a file of at most 20 MB.")
        upload = form.get("document")
        if upload is None or isinstance(upload, str) or not upload.filename:
            return listing(error="Choose a file to preview.")
        suffix = Path(upload.filename).suffix.lower()
        if suffix not in FORMATS:
            return listing(error=f"Unsupported format {suffix or '(none)'}: use one of {', '.join(sorted(FORMATS))}.")
        data = await upload.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            return listing(error="The file is larger than 20 MB.")
        token = secrets.token_urlsafe(24)
        folder = staging / token
        folder.mkdir(parents=True)
        # The staff member's file name is shown, never used as a path.
        path = folder / f"upload{suffix}"
        path.write_bytes(data)
        try:
            draft = await run_in_threadpool(prepare, path, ctx.settings.seeds_dir)
        except AssistantError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            return listing(error=str(exc).replace(str(path), upload.filename))
        proposals = "".join(
            f"<li>This looks like a newer version of <code>{html.escape(old)}</code> (same issuer and title, "
            f"earlier date).</li>" for old in draft.proposed_supersedes)
        supersede = "".join(
            f"<label><input type='checkbox' name='supersedes' value='{html.escape(old, quote=True)}'> "
            f"supersedes {html.escape(old)}</label> " for old in draft.proposed_supersedes)
        body = (f"<h1>Preview: {html.escape(upload.filename)}</h1>"
                f"<p class='sub'>Nothing is published yet. Check the metadata and every measure.</p>"
                f"{'<ul>' + proposals + '</ul>' if proposals else ''}"
                f"<pre id='library-preview'>{html.escape(render_document(draft.parsed, 'preview', draft.warnings))}</pre>"
                f"<form method='post' action='/insights/library/publish'>"
                f"<input type='hidden' name='token' value='{token}'>{supersede}"
                f"<button type='submit' id='publish'>Publish</button></form>"
                f"<form method='post' action='/insights/library/discard'><input type='hidden' name='token' "
                f"value='{token}'><button type='submit' id='discard'>Discard</button></form>")
        return frame(body)

    @router.post("/insights/library/publish", response_class=HTMLResponse)
    async def publish_page(request: Request) -> Response:
        if not authorized(request):
            return login()
        form = await request.form()
        token = str(form.get("token", ""))
        path = staged(token)
        if path is None:
            return listing(error="That preview is no longer available; upload the file again.")
        supersedes = str(form.get("supersedes", "")) or None
        def run():
            draft = prepare(path, ctx.settings.seeds_dir, supersedes=supersedes)
            published = publish(draft, ctx.settings.seeds_dir, ctx.settings.index_dir,
                                ctx.assistant.retriever.embedder, hnsw=ctx.settings.hnsw)
            follow_index(request)
            return published

        try:
            doc, report = await run_in_threadpool(run)
        except AssistantError as exc:
            return listing(error=str(exc).replace(str(path), "the upload"))
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)
        log.warning("published %s from the staff page (%d measures)", doc.doc_id, report.measures)
        return listing(message=f"Published {doc.doc_id}: {doc.title}. The assistant now answers from "
                               f"{report.documents} documents ({report.measures} measures).")

    @router.post("/insights/library/discard")
    async def discard(request: Request) -> Response:
        if not authorized(request):
            return login()
        path = staged(str((await request.form()).get("token", "")))
        if path is not None:
            shutil.rmtree(path.parent, ignore_errors=True)
        return RedirectResponse("/insights/library", status_code=303)

    @router.post("/insights/library/remove", response_class=HTMLResponse)
    async def remove_page(request: Request) -> Response:
        if not authorized(request):
            return login()
        doc_id = str((await request.form()).get("doc_id", ""))
        def run() -> str:
            title = find(ctx.settings.seeds_dir, doc_id).document.title
            remove(doc_id, ctx.settings.seeds_dir, ctx.settings.index_dir, ctx.assistant.retriever.embedder,
                   hnsw=ctx.settings.hnsw)
            follow_index(request)
            return title

        try:
            title = await run_in_threadpool(run)
        except AssistantError as exc:
            return listing(error=str(exc))
        return listing(message=f"Removed {doc_id}: {title}.")

    return router
