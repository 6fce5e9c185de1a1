"""Run localstripe (a GPL dev/test tool) in its own process, bound to 127.0.0.1, with its
broken on-disk store turned off. The app never imports localstripe: `crowdmade run` and the
tests start this file as a child process.

    python -m tests.support.localstripe_server --port 8420
"""

from __future__ import annotations

import argparse
import logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()

    from aiohttp import web
    from localstripe import resources, server

    # Its pickle store corrupts itself when reloaded: keep everything in memory only.
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None

    @web.middleware
    async def scope_fake_stripe_js(request, handler):  # noqa: ANN001, ANN202
        """Its fake Stripe.js declares a top-level `class Element`, which hides the browser's own
        `Element` from every script on the page (htmx 2 then ignores the page). Served inside a
        block, its declarations stay local while `Stripe = ...` still sets the global."""
        response = await handler(request)
        if request.path == "/js.stripe.com/v3/" and response.status == 200:
            response.text = "{\n" + response.text + "\n}\n"
        return response

    server.app.middlewares.append(scope_fake_stripe_js)
    logging.basicConfig(level=logging.WARNING)
    web.run_app(server.app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
