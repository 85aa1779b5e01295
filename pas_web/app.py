"""The dashboard's HTTP side: the page, a small JSON API over the hub and the daemon, and the event
stream to the browsers (server-sent events).

State changes go to the daemon through the same methods the CLI calls (`task.approve`,
`task.reject`, `task.cancel`), so the result is the CLI's: a 3-way apply, CONFLICT never overwrites.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from pydantic import ValidationError

from daemon import protocol as p
from daemon.errors import DaemonUnavailable, InvalidState, NotFound, PasError
from daemon.version import banner
from pas_web import render
from pas_web.hub import PER_PAGE, Hub, dump
from pas_web.security import Guard

HUB = web.AppKey("hub", Hub)
GUARD = web.AppKey("guard", Guard)
PAGE = web.AppKey("page", str)
KEEPALIVE_S = 15.0
PACKAGE = Path(str(resources.files("pas_web")))


def _error(exc: PasError) -> web.Response:
    status = 503 if isinstance(exc, DaemonUnavailable) else 404 if isinstance(exc, NotFound) else \
        409 if isinstance(exc, InvalidState) else 400
    return web.json_response({"error": exc.message}, status=status)


async def index(request: web.Request) -> web.Response:
    return web.Response(text=request.app[PAGE], content_type="text/html")


async def code_css(request: web.Request) -> web.Response:
    return web.Response(text=render.style_css(), content_type="text/css")


async def state(request: web.Request) -> web.Response:
    return web.json_response(request.app[HUB].state())


async def tasks(request: web.Request) -> web.Response:
    """A page of tasks from the daemon: `state`, `model`, `q` (words) filter; `before` is the previous
    page's `next`."""
    q = request.query
    states = {s.upper() for s in q.getall("state", []) if s}
    try:
        per_page = min(max(int(q.get("n", PER_PAGE)), 1), 200)
    except ValueError:
        per_page = PER_PAGE
    try:
        return web.json_response(await request.app[HUB].page(
            states=states or None, model=q.get("model") or None, words=q.get("q", ""), before=q.get("before") or None,
            per_page=per_page))
    except PasError as exc:
        return _error(exc)
    except ValidationError as exc:  # a state or value the protocol refuses
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "request"
        return web.json_response({"error": f"bad request: {where}: {err['msg']}"}, status=400)
    except ValueError as exc:
        return web.json_response({"error": f"bad request: {exc}"}, status=400)


async def task(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    task_id = request.match_info["task_id"]
    try:
        info = await hub.client.get(task_id)
        receipts = await hub.client.receipts(p.ReceiptsParams(task_id=info.id, limit=100))
    except PasError as exc:
        return _error(exc)
    diff, diff_error = None, None
    if not info.state.active:
        try:
            diff = render.diff_view(await hub.client.diff(info.id), info)
        except PasError as exc:  # a task that never produced one: show the task all the same
            diff_error = exc.message
    job = hub.jobs.get(info.job_id) if info.job_id else None
    return web.json_response({"task": dump(info), "diff": diff, "diff_error": diff_error,
                              "receipts": [dump(r) for r in receipts],
                              "progress": hub.progress.get(info.id), "job": job})


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return body


async def act(request: web.Request) -> web.Response:
    """Approve, reject (the whole task or chosen hunks) or cancel a task."""
    hub = request.app[HUB]
    task_id, verb = request.match_info["task_id"], request.match_info["verb"]
    body = await _body(request)
    try:
        if verb == "cancel":
            return web.json_response({"task": dump(await hub.client.cancel(task_id))})
        params = p.ReviewParams(task_id=task_id, hunks=body.get("hunks") or None)
        result = await (hub.client.approve(params) if verb == "approve" else hub.client.reject(params))
    except PasError as exc:
        return _error(exc)
    except ValueError as exc:  # pydantic's ValidationError: hunk numbers that are not hunk numbers
        return web.json_response({"error": f"bad request: {str(exc).splitlines()[0]}"}, status=400)
    return web.json_response(dump(result))


async def job_act(request: web.Request) -> web.Response:
    """Approve, reject or cancel a whole job."""
    hub = request.app[HUB]
    job_id, verb = request.match_info["job_id"], request.match_info["verb"]
    try:
        if verb == "cancel":
            return web.json_response({"job": dump(await hub.client.cancel_job(job_id))})
        params = p.JobReviewParams(job_id=job_id)
        result = await (hub.client.approve_job(params) if verb == "approve" else hub.client.reject_job(params))
    except PasError as exc:
        return _error(exc)
    return web.json_response({"conflicts": [dump(c) for c in result.conflicts], "state": result.job.state.value})


async def receipts(request: web.Request) -> web.Response:
    try:
        return web.json_response(await request.app[HUB].charts())
    except PasError as exc:
        return _error(exc)


async def events(request: web.Request) -> web.StreamResponse:
    """The browser's live feed: the hub's messages as server-sent events."""
    hub = request.app[HUB]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    q = hub.subscribe()
    try:
        hello = {"type": "hello", "connected": hub.connected, "reason": hub.reason}
        await response.write(f"retry: 1000\ndata: {json.dumps(hello)}\n\n".encode())
        while True:
            try:
                data = await asyncio.wait_for(q.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(f"data: {data}\n\n".encode())
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        hub.unsubscribe(q)
    return response


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("Cache-Control", "no-store")
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Content-Security-Policy"] = ("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                          "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def create_app(socket: str | os.PathLike[str] | None = None, guard: Guard | None = None) -> web.Application:
    """The dashboard application; its hub follows the daemon while the app runs."""
    guard = guard or Guard()
    app = web.Application(middlewares=[guard.middleware])
    hub = Hub(socket)
    app[HUB], app[GUARD] = hub, guard
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(PACKAGE / "templates"), autoescape=True)
    app[PAGE] = env.get_template("index.html").render(csrf=guard.csrf, version=banner("pasd web"))

    async def follow(app: web.Application) -> AsyncIterator[None]:
        runner = asyncio.create_task(hub.run(), name="pasd-web-hub")
        yield
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await hub.client.close()

    app.cleanup_ctx.append(follow)
    app.on_response_prepare.append(_secure_headers)
    r = app.router
    r.add_get("/", index)
    r.add_get("/code.css", code_css)
    r.add_get("/api/state", state)
    r.add_get("/api/tasks", tasks)
    r.add_get("/api/task/{task_id}", task)
    r.add_post("/api/task/{task_id}/{verb:approve|reject|cancel}", act)
    r.add_post("/api/job/{job_id}/{verb:approve|reject|cancel}", job_act)
    r.add_get("/api/receipts", receipts)
    r.add_get("/events", events)
    r.add_static("/static/", PACKAGE / "static", append_version=False)
    return app
