"""pasd web: the pool, the queue, review by hunk and receipts charts in the browser.

A front end like pas_tui: it talks to the daemon only through `daemon.client`. aiohttp, Jinja2 and
Pygments are imported here, never by the rest of the CLI.
"""
