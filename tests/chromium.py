"""A headless Chromium driven through the Chrome DevTools Protocol, for the tests that look at pages.

Chromium is started with ``--remote-debugging-pipe``: it reads protocol commands (JSON, each ended by a NUL
byte) from file descriptor 3 and writes responses and events the same way to descriptor 4. No port is
opened and no client library is needed; :class:`Browser` is the whole client. Debian's ``chromium`` package
provides the browser (``.ci/run`` installs it). The flags keep it off the network and away from any user
profile: a fresh ``--user-data-dir`` per browser, no sync, no component or background updates.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Flags of every browser the tests start (besides the pipe and the profile folder).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)


def find_chromium() -> str | None:
    """The Chromium executable: ``$CARBONSIM_CHROMIUM``, else ``chromium`` on the PATH, else None."""
    explicit = os.environ.get("CARBONSIM_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _above_9(fd: int) -> int:
    """The same pipe end on a descriptor above 9 (the original is closed)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class ProtocolError(RuntimeError):
    """A command the browser answered with an error, or an answer that never came."""


class Browser:
    """One headless Chromium process and its protocol pipe.

    Args:
        executable: Path of the Chromium binary.
        timeout_s: How long to wait for any one answer or event, in wall-clock seconds.
    """

    def __init__(self, executable: str, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self._profile = tempfile.TemporaryDirectory(prefix="carbonsim-chromium-")
        self._log = open(Path(self._profile.name) / "chromium.log", "wb")  # noqa: SIM115 (closed in close())
        commands_r, commands_w = os.pipe()
        answers_r, answers_w = os.pipe()
        # The child's ends move above descriptor 9 first: were one of them 3 or 4 already, the first dup2
        # below would overwrite it before it is read.
        commands_r, answers_w = (_above_9(fd) for fd in (commands_r, answers_w))
        # A small Python trampoline puts the two pipe ends on descriptors 3 and 4, where Chromium expects them,
        # then becomes Chromium (a shell cannot: dash redirects only descriptors 0-9).
        argv = [executable, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self._profile.name}", "about:blank"]
        trampoline = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
            "os.execv(sys.argv[3], sys.argv[3:])"
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-c", trampoline, str(commands_r), str(answers_w), *argv],
            pass_fds=(commands_r, answers_w),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        os.close(commands_r)
        os.close(answers_w)
        self._out = commands_w
        self._in = answers_r
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def log(self) -> str:
        """What Chromium printed (for a failure message)."""
        self._log.flush()
        return (Path(self._profile.name) / "chromium.log").read_text(errors="replace")[-3000:]

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"no answer from Chromium within {self.timeout_s} s\n{self.log()}")
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 20)
                if not chunk:
                    raise ProtocolError(f"Chromium closed its pipe\n{self.log()}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Sends one command and returns its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        try:
            os.write(self._out, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise ProtocolError(f"{method}: Chromium has quit\n{self.log()}") from None
        deadline = time.monotonic() + self.timeout_s
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise ProtocolError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))
            self._events.append(answer)

    def wait_event(self, method: str, session: str | None = None) -> dict[str, Any]:
        """Waits for an event (one that already arrived counts) and returns its parameters."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session:
                    del self._events[i]
                    return dict(event.get("params", {}))
            self._events.append(self._read_message(deadline))

    def page(self, width: int, height: int, mobile: bool = False) -> Page:
        """A new tab with a viewport of ``width`` x ``height`` CSS pixels."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
            session=session,
        )
        return Page(self, session)

    def close(self) -> None:
        """Asks Chromium to quit, ends it if it does not, and removes its profile."""
        with contextlib.suppress(ProtocolError, OSError):  # it may have quit already
            self.send("Browser.close")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        os.close(self._out)
        os.close(self._in)
        self._log.close()
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab of a :class:`Browser`."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def goto(self, url: str) -> None:
        """Opens ``url`` and waits for its load event (every image of the page loaded)."""
        result = self.browser.send("Page.navigate", {"url": url}, session=self.session)
        if result.get("errorText"):
            raise ProtocolError(f"{url}: {result['errorText']}")
        self.browser.wait_event("Page.loadEventFired", session=self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
        )
        if "exceptionDetails" in result:
            raise ProtocolError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, max_height: int = 16_000) -> bytes:
        """Saves a PNG of the whole page (at most ``max_height`` CSS pixels tall) and returns it."""
        size = self.browser.send("Page.getLayoutMetrics", session=self.session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], max_height), "scale": 1}
        data = self.browser.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
            session=self.session,
        )["data"]
        png = base64.b64decode(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        return png
