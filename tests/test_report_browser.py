"""The reports as a reader sees them: loaded in a real headless Chromium, on a wide and on a phone-sized screen.

Each kind of report (an inference sweep, a batch sweep, the reference table) is opened from its file, with
every ``<details>`` opened; the test checks that every image decodes, that nothing is wider than the screen
at 1400 and 400 CSS pixels (wide tables scroll in their own box), that the tables' headers stick, that the page
loads nothing from elsewhere, and saves a full-page screenshot of each into the CI artefacts folder:
``$CI_ARTIFACTS_DIR/report-screenshots/`` if that variable is set, else ``ci-artifacts/report-screenshots/``
at the top of the checkout.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it; ``$CARBONSIM_CHROMIUM`` names another
binary). Where it is missing the test is skipped with a message, except in CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import Browser, find_chromium
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (1400, 400)


def artifacts_dir() -> Path:
    """Where the screenshots go (``$CI_ARTIFACTS_DIR`` or ``ci-artifacts/`` in the checkout)."""
    return Path(os.environ.get("CI_ARTIFACTS_DIR") or ROOT / "ci-artifacts") / "report-screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        message = "chromium is not installed (apt-get install chromium): the real-browser report test cannot run"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; .ci/run installs it, so CI must have it")
        pytest.skip(message)
    with Browser(executable) as b:
        yield b


#: Opens every collapsed section and waits until every image has decoded (or failed to).
PREPARE = """
(async () => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const images = [...document.images];
  const decoded = await Promise.all(images.map(img => img.decode().then(() => true, () => false)));
  return images.map((img, i) => ({
    alt: img.alt, ok: decoded[i] && img.complete && img.naturalWidth > 0, width: img.naturalWidth,
  }));
})()
"""

#: Elements that reach past the right edge of the screen (outside boxes that scroll on their own).
OVERFLOW = """
(() => {
  const width = document.documentElement.clientWidth;
  const inScroller = el => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
    }
    return false;
  };
  const over = [...document.body.querySelectorAll('*')]
    .filter(el => !inScroller(el) && el.getBoundingClientRect().right > width + 0.5)
    .map(el => `${el.tagName}${el.id ? '#' + el.id : ''} ${Math.round(el.getBoundingClientRect().right)}`);
  return {width, scrollWidth: document.documentElement.scrollWidth, over: over.slice(0, 10)};
})()
"""

#: What the page would fetch from elsewhere (it must be one file: only data: URLs).
EXTERNAL = """
[...document.querySelectorAll('[src], link[href], script, iframe, object, embed')]
  .map(el => el.getAttribute('src') || el.getAttribute('href') || el.tagName)
  .filter(url => !url.startsWith('data:'))
"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", ["inference_sweep", "batch_sweep", "reference_sweep"])
def test_every_report_reads_in_a_real_browser(browser, request, kind, width):
    sweep: Path = request.getfixturevalue(kind)
    report = sweep / "report.html"
    page = browser.page(width, 900, mobile=width < 600)
    page.goto(report.as_uri())
    images = page.evaluate(PREPARE)
    expected = len(list((sweep / "figures").glob("*.png")))
    assert len(images) == expected > 0
    assert [img for img in images if not img["ok"]] == [], "images that did not decode"
    layout = page.evaluate(OVERFLOW)
    assert layout["scrollWidth"] <= layout["width"], layout
    assert layout["over"] == [], layout
    assert page.evaluate("document.querySelector('meta[name=viewport]') !== null")
    assert page.evaluate("[...document.querySelectorAll('th')].every(th => getComputedStyle(th).position === 'sticky')")
    assert page.evaluate(EXTERNAL) == []
    png = page.screenshot(artifacts_dir() / f"{kind.removesuffix('_sweep')}-{width}px.png")
    shot = Image.open(io.BytesIO(png))
    assert shot.width == width and shot.height > 900
