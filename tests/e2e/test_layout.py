"""Screenshots at desktop and phone widths, and no sideways scrolling on a phone.

Screenshots go to $E2E_SCREENSHOTS (default: a pytest temporary directory).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

VIEWPORTS = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}

# Elements that stick out past the right edge of the viewport (for a useful failure message).
WIDE_ELEMENTS_JS = """() => {
  const limit = window.innerWidth + 1;
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > limit) {
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
      out.push(`${name} right=${Math.round(r.right)}`);
    }
  }
  return out.slice(0, 8);
}"""


def test_screenshots_and_no_horizontal_overflow_on_phone(new_context, approved_idea, screenshot_dir):
    idea_id = approved_idea("Reflective winter cycling jacket")
    approved_idea("Insulated lunch box with cutlery")
    pages = {
        "home": "/",
        "ideas": "/ideas",
        "idea": f"/ideas/{idea_id}",
        "signup": "/signup",
    }
    problems: list[str] = []
    for device, viewport in VIEWPORTS.items():
        page = new_context(viewport=viewport).new_page()
        for name, path in pages.items():
            response = page.goto(path)
            assert response is not None and response.status == 200, f"{path}: {response and response.status}"
            page.wait_for_function("() => [...document.images].every((img) => img.complete || img.loading === 'lazy')")
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            page.screenshot(path=str(screenshot_dir / f"{name}-{device}.png"), full_page=True)
            if device == "phone":
                widths = page.evaluate(
                    "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
                )
                assert widths["inner"] == viewport["width"]
                if widths["scroll"] > widths["inner"] + 1:
                    problems.append(
                        f"{path} on a {viewport['width']} px phone scrolls sideways "
                        f"(scrollWidth {widths['scroll']}): {page.evaluate(WIDE_ELEMENTS_JS)}"
                    )
    assert not problems, "\n".join(problems)


def test_long_unbroken_title_does_not_overflow_on_phone(new_context, approved_idea):
    idea_id = approved_idea("Supercalifragilisticexpialidocious-waterproof-backpack", image=False)
    page = new_context(viewport=VIEWPORTS["phone"]).new_page()
    problems = []
    for path in (f"/ideas/{idea_id}", "/ideas"):
        page.goto(path)
        overflowing = page.evaluate(
            "() => [...document.querySelectorAll('h1, .card-title')]"
            ".filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.textContent.trim())"
        )
        scroll = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        if overflowing or scroll > 1:
            problems.append(f"{path}: {overflowing} stick out; page scrolls {scroll} px sideways")
    assert not problems, "\n".join(problems)
