"""create_app(): the one place Litestar is assembled (CONVENTIONS rule 1)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Litestar, Router
from litestar.config.compression import CompressionConfig
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.prometheus import PrometheusConfig
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app import audit_routes
from app.accounts import api as accounts_api
from app.accounts import privacy_routes as accounts_privacy
from app.accounts import routes as accounts_routes
from app.campaigns import api as campaigns_api
from app.campaigns import routes as campaigns_routes
from app.community import api as community_api
from app.community import routes as community_routes
from app.community import views
from app.db import start_database, stop_database
from app.experiments import routes as experiments_routes
from app.ideas import api as ideas_api
from app.ideas import routes as ideas_routes
from app.insight import routes as insight_routes
from app.jobs.service import run_worker
from app.mail import routes as mail_routes
from app.moderation import routes as moderation_routes
from app.orders import api as orders_api
from app.orders import routes as orders_routes
from app.orders import withdrawal_routes
from app.pages import api as pages_api
from app.pages import home as home_page
from app.pages import ideas as idea_pages
from app.pages import legal as legal_pages
from app.pages import product as product_page
from app.pages import profile as profile_page
from app.payments import webhooks as payment_webhooks
from app.points import api as points_api
from app.points import routes as points_routes
from app.settings import PROJECT_ROOT, get_settings
from app.shop import catalog_routes, checkout_routes, social_routes
from app.web import ops
from app.web.errors import EXCEPTION_HANDLERS
from app.web.input_guard import InputGuardMiddleware
from app.web.middleware import SecurityHeaders, SessionMiddleware
from app.web.templating import jinja_env

log = logging.getLogger("crowdmade")
# Request latency per route template (not per URL, so ids do not explode the label space).
PROMETHEUS = PrometheusConfig(app_name="crowdmade", prefix="crowdmade", group_path=True,
                              exclude=["^/static/", "^/media/", "^/metrics", "^/healthz", "^/readyz"])


class ApiError(msgspec.Struct, omit_defaults=True):
    """The JSON body of every error under /api (app/web/errors.py)."""

    status_code: int
    detail: str
    extra: dict[str, Any] | None = None


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(ApiError, description=description, generate_examples=False)


def document_api_errors(handlers: list) -> list:
    """Document the errors each API operation can answer (schemathesis checks them against the
    answers): a guard means 401 without a token and 403 without the right (staff, a verified
    email, not your own idea); an id in the path means 404; a write may meet a state that
    refuses it (409), a body over the limit (413) or a rate limit (429); any operation answers
    503 while the database is unavailable. The handler's own `responses` win."""
    for handler in handlers:
        codes = {503: "The database is briefly unavailable; retry after Retry-After seconds"}
        if handler.guards:
            codes |= {401: "No valid API token", 403: "Not allowed for this member"}
        if any("{" in path for path in handler.paths):
            codes[404] = "Not found, or not yours to see"
        if handler.http_methods - {"GET", "HEAD"}:
            codes |= {409: "Not possible in the current state", 413: "Request body too large",
                      429: "Too many requests; retry after Retry-After seconds"}
        handler.responses = {**{code: _error(text) for code, text in codes.items()}, **(handler.responses or {})}
    return handlers


def create_app(*, run_jobs: bool | None = None, manage_database: bool = True) -> Litestar:
    settings = get_settings()
    import app.handlers  # noqa: F401  (job handlers, also needed when enqueuing in-process)

    in_process_jobs = settings.jobs_in_process if run_jobs is None else run_jobs

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if manage_database:
            await start_database()
        stop = asyncio.Event()

        flusher = asyncio.create_task(views.run_flusher(stop))  # buffered page views
        worker = None
        if in_process_jobs:
            worker = asyncio.create_task(run_worker(stop, concurrency=2, poll_seconds=0.5))
        # What is loaded by now lives as long as the process: keep it out of the cyclic garbage
        # collector's full passes (a full pass over it paused a web worker ~80 ms, the p99 of
        # the cached pages at 5,000 requests/s).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(flusher, timeout=10)
            if worker:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(worker, timeout=10)
            if manage_database:
                await stop_database()

    api = Router(
        path="/api/v1",
        route_handlers=document_api_errors([
            *accounts_api.ROUTES, *pages_api.ROUTES, *ideas_api.ROUTES, *campaigns_api.ROUTES, *community_api.ROUTES, *points_api.ROUTES,
            *catalog_routes.API_ROUTES, *checkout_routes.API_ROUTES, *social_routes.API_ROUTES, *orders_api.API_ROUTES]),
        security=[{"BearerToken": []}],
        tags=["api"],
    )
    pages = [
        *accounts_routes.ROUTES,
        *home_page.ROUTES,
        *profile_page.ROUTES,
        *product_page.ROUTES,
        *idea_pages.ROUTES,
        *legal_pages.ROUTES,
        *ideas_routes.ROUTES,
        *campaigns_routes.ROUTES,
        *community_routes.ROUTES,
        *moderation_routes.ROUTES,
        *points_routes.ROUTES,
        *catalog_routes.ROUTES,
        *checkout_routes.ROUTES,
        *social_routes.ROUTES,
        *orders_routes.ROUTES,
        *withdrawal_routes.ROUTES,
        *payment_webhooks.ROUTES,
        *ops.ROUTES,
        *audit_routes.ROUTES,
        *accounts_privacy.ROUTES,
        *experiments_routes.ROUTES,
        *insight_routes.ROUTES,
    ]
    if settings.crowdmade_env != "production" and not settings.smtp_url:
        pages.extend(mail_routes.ROUTES)
    handlers = [
        # The OpenAPI document describes the JSON API only: pages and forms answer HTML, redirects
        # and CSRF refusals, which a client of the API never deals with.
        Router(path="/", route_handlers=pages, include_in_schema=False),
        api,
        create_static_files_router(path="/static", directories=[PROJECT_ROOT / "static"], include_in_schema=False,
                                   cache_control=None),
    ]

    return Litestar(
        route_handlers=handlers,
        middleware=[PROMETHEUS.middleware, SessionMiddleware, InputGuardMiddleware],
        # Security headers on every response, the router's own 404 and 405 included (a middleware
        # only sees requests that matched a route).
        before_send=[SecurityHeaders()],
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(jinja_env())),
        plugins=[HTMXPlugin()],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="Crowdmade API",
            version="1.0.0",
            path="/schema",
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}
            ),
        ),
        # Streams (server-sent events) opt out: gzip buffers them, so a browser (which always
        # sends Accept-Encoding: gzip) would never see the headers or an event.
        compression_config=CompressionConfig(backend="gzip", minimum_size=1024, exclude_opt_key="skip_compression"),
        logging_config=LoggingConfig(
            root={"level": "INFO", "handlers": ["queue_listener"]},
            # Production logs are one JSON object per line (python-json-logger), for a log shipper.
            formatters={"standard": {"()": "pythonjsonlogger.json.JsonFormatter",
                                     "fmt": "%(asctime)s %(levelname)s %(name)s %(module)s %(message)s",
                                     "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}}}
            if settings.crowdmade_env == "production"
            else {"standard": {"format": "%(levelname)s - %(asctime)s - %(name)s - %(module)s - %(message)s"}},
            # The Stripe SDK and httpx log every request to Stripe at INFO: in a pledge surge that
            # was ~10% of a web worker's CPU (py-spy, make bench). Their warnings still show.
            loggers={"crowdmade": {"level": "INFO", "propagate": True},
                     **{name: {"level": "WARNING", "propagate": True} for name in ("stripe", "httpx", "httpcore")}},
            log_exceptions="debug",
        ),
        request_max_body_size=1024 * 1024,
        debug=False,
    )
