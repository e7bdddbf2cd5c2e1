"""Headless Chromium driven over the DevTools protocol, for tests of the HTML report.

The protocol runs over `--remote-debugging-pipe` (file descriptors 3 and 4, messages separated by
NUL bytes) rather than `--remote-debugging-port`: no TCP port that any local process could
connect to and drive the browser through, no port to pick or race for, and no websocket client
to depend on. It is the same protocol Puppeteer speaks over the same pipe.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
# Everything that would make the browser talk to the network or do first-run work is off.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests and CI run as root, where the sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


class BrowserError(Exception):
    """The browser died, timed out, or answered a command with an error."""


def find_chromium() -> str | None:
    """The Chromium executable on PATH (Debian's `chromium`), or None."""
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Page:
    """One tab, attached with a flat session: commands and events carry its session id."""

    def __init__(self, browser: Chromium, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.send(method, params, session_id=self.session_id)

    def navigate(self, url: str, timeout_s: float = 10.0) -> None:
        """Load `url` and wait for its load event."""
        self.send("Page.enable")
        self.send("Page.navigate", url=url)
        self.browser.wait_for_event("Page.loadEventFired", self.session_id, timeout_s)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression evaluated in the page."""
        reply = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the centre of the element."""
        box = self.evaluate(
            f"""(() => {{
                const el = document.querySelector({json.dumps(selector)});
                el.scrollIntoView({{block: "center"}});
                const r = el.getBoundingClientRect();
                return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};
            }})()"""
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left",
                clickCount=1,
            )


class Chromium:
    """A headless Chromium process and its DevTools pipe."""

    def __init__(self, executable: str, profile_dir: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:
            # Chromium expects its end of the pipe on fds 3 (commands) and 4 (replies). Duplicate
            # both above 10 first: os.pipe() may itself have returned 3 or 4.
            read_end = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            write_end = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Python's own fds are close-on-exec already (PEP 446); 3 and 4 must survive exec.
            close_fds=False,
            # Its own process group, so that a hung browser is stopped with all its children.
            start_new_session=True,
            preexec_fn=wire_fds,  # safe here: the test process does not fork from threads
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session_id: str | None = None,
        timeout_s: float = 10.0,
    ) -> dict[str, Any]:
        """Send one command and return its result, keeping events that arrive meanwhile."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self._events.append(reply)

    def wait_for_event(self, method: str, session_id: str | None, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session_id:
                    del self._events[index]
                    return
            self._events.append(self._receive(deadline))

    def new_page(self, width: int = 1200, height: int = 900) -> Page:
        """A fresh tab of the given viewport size."""
        target = self.send("Target.createTarget", {"url": "about:blank"})
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        page.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        return page

    def close(self) -> None:
        """Stop this browser (by its own pid) and release the pipe."""
        with suppress(BrowserError, OSError):
            self.send("Browser.close", timeout_s=5.0)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError("timed out waiting for the browser")
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError(f"the browser exited (status {self.process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        decoded: dict[str, Any] = json.loads(message)
        return decoded


@contextmanager
def chromium(executable: str, profile_dir: Path) -> Iterator[Chromium]:
    """A headless Chromium for the duration of the block."""
    browser = Chromium(executable, profile_dir)
    try:
        yield browser
    finally:
        browser.close()
