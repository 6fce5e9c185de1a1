"""The bench's baseline: a bare Litestar app that renders, from memory, a Jinja page as big as
Crowdmade's ideas list (no database, no middleware, no session), served by uvicorn with the
same number of workers and measured by the same wrk settings. The ratio to it says how much
of the machine our own code leaves on the table.

    BASELINE_BYTES=38000 uvicorn tests.perf.baseline_app:app --workers 2 --port 8500
"""

from __future__ import annotations

import os

from jinja2 import DictLoader, Environment, select_autoescape
from litestar import Litestar, get
from litestar.plugins.jinja import JinjaTemplateEngine as Engine
from litestar.response import Template
from litestar.template.config import TemplateConfig

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/css/app.css"></head>
<body><header class="site-header"><a class="brand" href="/">Crowdmade</a>
<nav><a href="/ideas">Ideas</a> <a href="/shop">Shop</a> <a href="/login">Log in</a></nav></header>
<main><h1>{{ title }}</h1>
<p class="results-count">{{ "{:,}".format(total) }} ideas</p>
<div class="grid">
{% for idea in items %}<article class="card idea-card">
  <a class="card-media" href="/ideas/{{ idea.id }}" tabindex="-1" aria-hidden="true"><span class="card-placeholder">{{ idea.title[:1] }}</span></a>
  <div class="card-body">
    <p class="card-meta"><span>{{ idea.category }}</span> <span class="badge badge-{{ idea.status }}">Voting open</span></p>
    <h3 class="card-title"><a href="/ideas/{{ idea.id }}">{{ idea.title }}</a></h3>
    <p class="card-summary">{{ idea.summary }}</p>
    <p class="card-foot"><span class="votes"><strong>{{ "{:,}".format(idea.votes) }}</strong> want this</span>
    <span class="by">by <a href="/members/{{ idea.handle }}">{{ idea.author }}</a></span></p>
  </div>
</article>
{% endfor %}</div>
<nav class="pagination" aria-label="Pages"><span>Page 1 of {{ pages }}</span> <a rel="next" href="/ideas?page=2">Next</a></nav>
</main>{{ filler }}<footer class="site-footer"><p>Crowdmade</p></footer></body></html>
"""

environment = Environment(loader=DictLoader({"list.html": PAGE}), autoescape=select_autoescape(default=True),
                          auto_reload=False)


def _item(n: int) -> dict:
    return {"id": 1000 + n, "title": f"Packable rain jacket with pit zips #{n}", "category": "Apparel",
            "status": "voting", "summary": "A light shell that fits in its own pocket and breathes on the bike",
            "votes": 1234 - n, "handle": f"maja-{n}", "author": "Maja Lind"}


def _page_size(items: list[dict], filler: str = "") -> int:
    return len(environment.get_template("list.html").render(
        title="Ideas", items=items, total=88_000, pages=7_000, filler=filler).encode())


def _context() -> dict:
    """As many cards as make the page as big as BASELINE_BYTES (the measured ideas list page)."""
    target = int(os.environ.get("BASELINE_BYTES", "40000"))
    items = [_item(n) for n in range(12)]
    while _page_size(items) < target and len(items) < 2000:
        items.append(_item(len(items)))
    while len(items) > 1 and _page_size(items) > target:
        items.pop()
    filler = "<!--" + "x" * max(0, target - _page_size(items) - 7) + "-->"
    return {"title": "Ideas", "items": items, "total": 88_000, "pages": 7_000, "filler": filler}


CONTEXT = _context()


@get("/", sync_to_thread=False)
def ideas_page() -> Template:
    return Template("list.html", context=CONTEXT)


app = Litestar(route_handlers=[ideas_page],
               template_config=TemplateConfig(instance=Engine.from_environment(environment)))
