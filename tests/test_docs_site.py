"""The documentation site builds with warnings as errors, documents every
public name, and its pages render in headless Chromium with their images.

The site is built once for the module, from a copy of ``docs/`` and
``examples/`` in a temporary folder (so that ``make docs`` output is left
alone), running one example of the gallery: ``cross_modal_search``, whose
page has a figure.
"""

import base64
import fcntl
import importlib
import json
import os
import pkgutil
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import skmm

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "sphinxext"))
from skmm_docs import DEPRECATED_MODULES, documented_name  # noqa: E402  (the docs' own rules)

EXAMPLE = "cross_modal_search"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site as ``make docs`` does (``-W --keep-going``); return
    the folder of its HTML."""
    pytest.importorskip("sphinx_gallery", reason="pip install skmm[docs]")
    work = tmp_path_factory.mktemp("site")
    generated = ("_build", "auto_examples", "generated", "api.rst", "sg_*.rst", "__pycache__")
    shutil.copytree(ROOT / "docs", work / "docs", ignore=shutil.ignore_patterns(*generated))
    shutil.copytree(ROOT / "examples", work / "examples",
                    ignore=shutil.ignore_patterns("*.png", "__pycache__"))
    env = {**os.environ, "SKMM_DOCS_EXAMPLES": EXAMPLE}
    out = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
         str(work / "docs"), str(work / "html")],
        cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, f"sphinx-build failed:\n{out.stderr[-6000:]}"
    return work / "html"


def _public_modules():
    for info in pkgutil.iter_modules(skmm.__path__):
        if not info.name.startswith("_") and f"skmm.{info.name}" not in DEPRECATED_MODULES:
            yield f"skmm.{info.name}", importlib.import_module(f"skmm.{info.name}")


def test_every_public_name_has_a_page_in_the_api_reference(site):
    api = (site / "api.html").read_text()
    expected = {("skmm", name) for name in skmm.__all__ if not name.startswith("_")}
    for module_name, module in _public_modules():
        assert hasattr(module, "__all__"), f"public module {module_name} has no __all__"
        expected |= {(module_name, name) for name in module.__all__}
    missing = []
    for module_name, name in sorted(expected):
        page = f"generated/{documented_name(module_name, name)}.html"
        if not (site / page).is_file() or f'href="{page}' not in api:
            missing.append(f"{module_name}.{name}")
    assert not missing, f"not in the API reference: {missing}"


def test_the_gallery_ran_its_example_and_saved_its_figure(site):
    page = (site / "auto_examples" / f"{EXAMPLE}.html").read_text()
    assert "held-out recall@10" in page  # the printed output
    figures = re.findall(r'<img[^>]+src="\.\./(_images/sphx_glr_[^"]+\.png)"', page)
    assert figures, "the example's page shows no figure"
    for figure in figures:
        data = (site / figure).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, figure


# -- in the browser ----------------------------------------------------------------


class _Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe
    (``--remote-debugging-pipe``: it reads commands on fd 3, answers on fd 4)."""

    def __init__(self, executable, profile):
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        # out of the way of fds 3 and 4, where the child needs them
        fds = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser)]
        for fd in (to_browser, from_browser):
            os.close(fd)

        def child_fds():
            os.dup2(fds[0], 3)
            os.dup2(fds[1], 4)

        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "--window-size=1280,1600", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            pass_fds=(3, 4), preexec_fn=child_fds,
        )
        for fd in fds:
            os.close(fd)
        self._buffer, self._id, self._events = b"", 0, []

    def _message(self, deadline):
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited: {self.process.stderr.read()[-2000:]!r}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, session=None, timeout=60, **params):
        self._id += 1
        command = {"id": self._id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._write, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._message(deadline)
            if message.get("id") == self._id:
                assert "error" not in message, (method, message["error"])
                return message["result"]
            self._events.append(message)

    def wait_for(self, event, session, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            for i, message in enumerate(self._events):
                if message.get("method") == event and message.get("sessionId") == session:
                    return self._events.pop(i)
            self._events.append(self._message(deadline))

    def open(self, url):
        """Load ``url`` in a new tab and return the tab's session."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable", session)
        self.send("Page.navigate", session, url=url)
        self.wait_for("Page.loadEventFired", session)
        return session

    def evaluate(self, session, expression):
        result = self.send("Runtime.evaluate", session, expression=expression,
                           awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"]["value"]

    def close(self):
        try:
            self.send("Browser.close", timeout=10)
        except (TimeoutError, RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._read)
        os.close(self._write)


# What the page shows, once every image has finished loading (or failed to).
_PAGE_STATE = """
(async () => {
  await Promise.all(Array.from(document.images, (img) => img.complete ? null :
    new Promise((done) => { img.onload = img.onerror = done; })));
  const main = document.querySelector("main") || document.body;
  return {
    title: document.title,
    text: main.innerText,
    // set by the theme's stylesheet: empty when it did not load
    theme: getComputedStyle(document.documentElement).getPropertyValue("--pst-color-primary"),
    images: Array.from(document.images, (img) => ({
      src: img.getAttribute("src"), loaded: img.complete && img.naturalWidth > 0,
    })),
  };
})()
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not on the PATH: apt-get install chromium")
    chromium = _Chromium(executable, tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


def _render(browser, page, screenshot):
    session = browser.open(page.as_uri())
    state = browser.evaluate(session, _PAGE_STATE)
    png = browser.send("Page.captureScreenshot", session, format="png")["data"]
    screenshot.write_bytes(base64.b64decode(png))
    return state


def _assert_rendered(state, page):
    assert state["theme"].strip(), f"the theme's stylesheet did not load in {page.name}"
    broken = [image["src"] for image in state["images"] if not image["loaded"]]
    assert not broken, f"images that did not load in {page.name}: {broken}"
    for image in state["images"]:
        src = image["src"]
        if not src.startswith(("data:", "http")):
            path = (page.parent / src.split("#")[0]).resolve()
            assert path.is_file() and path.stat().st_size > 0, src


def _assert_not_blank(screenshot):
    from PIL import Image

    with Image.open(screenshot) as image:
        assert image.format == "PNG"
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 16, "the screenshot is blank"


def test_an_api_page_renders_in_chromium(site, browser, tmp_path):
    page = site / "generated" / "skmm.MultimodalFuser.html"
    state = _render(browser, page, tmp_path / "api.png")
    assert "skmm.MultimodalFuser" in state["title"]
    for section in ("Parameters", "Attributes", "Examples", "fit_transform("):
        assert section in state["text"], section
    _assert_rendered(state, page)
    _assert_not_blank(tmp_path / "api.png")


def test_a_gallery_page_renders_with_its_figure_in_chromium(site, browser, tmp_path):
    page = site / "auto_examples" / f"{EXAMPLE}.html"
    state = _render(browser, page, tmp_path / "example.png")
    assert "Cross-modal search" in state["title"]
    assert "held-out recall@10" in state["text"]
    figures = [image for image in state["images"] if "sphx_glr_" in (image["src"] or "")]
    assert figures, "the gallery page shows no figure"
    _assert_rendered(state, page)
    _assert_not_blank(tmp_path / "example.png")


def test_the_gallery_index_renders_its_thumbnails_in_chromium(site, browser, tmp_path):
    page = site / "auto_examples" / "index.html"
    state = _render(browser, page, tmp_path / "gallery.png")
    thumbnails = [image for image in state["images"] if "thumb" in (image["src"] or "")]
    assert len(thumbnails) == len(list((ROOT / "examples").glob("*.py")))
    _assert_rendered(state, page)
