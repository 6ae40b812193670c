"""A minimal provider for bench/jobs.py, run in its own process so its CPU is not counted as the bot's:
every `GET /jobs/{id}` answers that the job is still running."""

from __future__ import annotations

import json
import sys

from aiohttp import web

BODY = json.dumps({"status": "running", "progress": 42})


async def status(_request: web.Request) -> web.Response:
    return web.Response(text=BODY, content_type="application/json")


def main() -> None:
    app = web.Application()
    app.router.add_get("/jobs/{id}", status)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
