"""Run the dashboard: bind, print the URL with its token, optionally open a browser, serve until
interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import webbrowser
from typing import TextIO

from aiohttp import web

from daemon import launch
from pas_web.app import HUB, create_app
from pas_web.security import LOOPBACK, Guard


def url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def serve(host: str, port: int, *, socket: str | None = None, open_browser: bool = False,
                out: TextIO = sys.stdout) -> None:
    """Serve until SIGINT or SIGTERM."""
    guard = Guard(host=host)
    app = create_app(socket, guard)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        guard.port = int(runner.addresses[0][1])
        url = f"http://{url_host(host)}:{guard.port}/?token={guard.token}"
        if host not in LOOPBACK:
            print(f"pasd web: warning: serving on {host}, beyond this machine: anyone who can reach it and has the "
                  "token can approve diffs, and the traffic is not encrypted", file=sys.stderr)
        print(f"pasd web: the dashboard is at {url}", file=out, flush=True)
        print("pasd web: keep the token private; Ctrl-C stops the server", file=out, flush=True)
        if await asyncio.to_thread(launch.hello, app[HUB].socket) is None:
            print(f"pasd web: no daemon answers at {app[HUB].socket} yet (`pasd start` starts one); "
                  "the page connects when it does", file=out, flush=True)
        if open_browser:
            await asyncio.to_thread(webbrowser.open, url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
