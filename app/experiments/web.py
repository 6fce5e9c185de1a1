"""`experiment("key")` in templates: a Template response that renders inside its async call.

Jinja templates are sync, so a template cannot query the database or write an exposure. This
response therefore renders at the last moment, when it is sent: it first loads what the sync
`experiment()` needs (cached definitions, the member's subject), then renders (each
`experiment()` call that shows a running variant buffers its exposure), then writes the buffered
exposures and adds the visitor's `cm_ab` cookie, and only then sends the page. So an exposure is
recorded exactly when a variant is shown, before the visitor can act on it, and a page that
shows no running variant costs nothing.
"""

from __future__ import annotations

from typing import Any

from litestar.response import Template
from litestar.types import Receive, Scope, Send

from app.experiments.service import RequestExperiments, adopt_subject, visitor_subject
from app.web import identity


class ExperimentTemplate(Template):
    """A `Template` whose context has `experiment(key, default=None)`."""

    def to_asgi_response(self, app: Any, request: Any, **kwargs: Any) -> _RenderWhenSent:  # type: ignore[override]
        return _RenderWhenSent(self, request, kwargs)


class _RenderWhenSent:
    __slots__ = ("kwargs", "request", "template")

    def __init__(self, template: ExperimentTemplate, request: Any, kwargs: dict[str, Any]) -> None:
        self.template = template
        self.request = request
        self.kwargs = kwargs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        experiments = RequestExperiments.of(self.request)
        await experiments.prepare()
        self.template.context["experiment"] = experiments.variant
        response = Template.to_asgi_response(self.template, None, self.request, **self.kwargs)
        await experiments.flush()
        if cookie := experiments.cookie_header():
            response.headers.add("set-cookie", cookie)
        await response(scope, receive, send)


identity.provide_page_response(ExperimentTemplate)


async def _keep_subject(request: Any, member_id: int) -> None:
    await adopt_subject(request, member_id)  # the A/B variants seen before login are kept


identity.provide_sign_in(_keep_subject)
identity.provide_visitor_subject(visitor_subject)
