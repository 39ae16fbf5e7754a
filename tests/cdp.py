"""Drive real headless Chromium over the DevTools protocol: load a page, click, read the DOM, collect every console
error, uncaught exception and CSP violation, and take screenshots.

`tests/browser.py` covers the one-shot cases (`--dump-dom`, `--screenshot`); this is for checks that need a live
page. It speaks CDP over the `websockets` sync client the project already depends on, one command at a time.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from tests.browser import FLAGS, TIMEOUT_S, require_chromium


class Page:
    """One browser tab attached in flattened mode; `problems` collects what a clean page must never log."""

    def __init__(self, ws: Any, session_id: str) -> None:
        self._ws = ws
        self._session = session_id
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.problems: list[str] = []

    def _record(self, message: dict[str, Any]) -> None:
        self.events.append(message)
        method, params = message.get("method"), message.get("params") or {}
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails") or {}
            text = (details.get("exception") or {}).get("description") or details.get("text")
            self.problems.append(f"uncaught exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args") or [])
            self.problems.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and (params.get("entry") or {}).get("level") == "error":
            entry = params["entry"]
            self.problems.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url') or ''}")

    def call(self, method: str, timeout_s: float = TIMEOUT_S, **params: Any) -> dict[str, Any]:
        """Send one command to the tab and return its result; events that arrive meanwhile are recorded."""
        self._next_id += 1
        ident = self._next_id
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params, "sessionId": self._session}))
        deadline = time.monotonic() + timeout_s
        while True:
            message = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                return message.get("result") or {}
            if message.get("sessionId") == self._session:
                self._record(message)

    def wait_for(self, method: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
        """Wait for the next event called `method` (one already recorded since the last wait counts)."""
        for index, message in enumerate(self.events):
            if message.get("method") == method:
                del self.events[: index + 1]
                return message.get("params") or {}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("sessionId") == self._session:
                self._record(message)
                if message.get("method") == method:
                    self.events.clear()
                    return message.get("params") or {}
        raise AssertionError(f"no {method} within {timeout_s:.0f} s")

    def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values only)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails'].get('text')}")
        return (result.get("result") or {}).get("value")

    def navigate(self, url: str) -> None:
        """Open `url` and wait for its load event."""
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def settle(self, seconds: float = 0.3) -> None:
        """Let pending events (late console messages, media errors) arrive and be recorded."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                message = json.loads(self._ws.recv(timeout=max(0.05, deadline - time.monotonic())))
            except TimeoutError:
                return
            if message.get("sessionId") == self._session:
                self._record(message)

    def screenshot(self, png: Path, *, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole document when `full_page`)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": size["width"],
                                                            "height": min(size["height"], 16000), "scale": 1})
        data = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        png = Path(png)
        png.write_bytes(data)
        return png


@contextlib.contextmanager
def open_page(url: str, *, width: int = 1280, height: int = 1000) -> Iterator[Page]:
    """A fresh headless Chromium with one tab loaded at `url`; the browser and its children die afterwards."""
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="s2s-cdp-") as profile:
        command = [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                   f"--window-size={width},{height}", "about:blank"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        try:
            browser_url = _devtools_url(process)
            with connect(browser_url, max_size=None, open_timeout=TIMEOUT_S) as ws:
                page = _attach(ws)
                for domain in ("Runtime", "Log", "Page"):
                    page.call(f"{domain}.enable")
                page.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                          mobile=False)
                page.navigate(url)
                yield page
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _devtools_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + TIMEOUT_S
    lines = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("DevTools listening on "):
            # Keep draining stderr so a chatty browser never blocks on a full pipe.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return line.split(" on ", 1)[1].strip()
    raise AssertionError("chromium printed no DevTools URL:\n" + "".join(lines[-5:]))


def _attach(ws: Any) -> Page:
    def send(ident: int, method: str, **params: Any) -> dict[str, Any]:
        ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(ws.recv(timeout=TIMEOUT_S))
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                return message["result"]

    target = send(1, "Target.createTarget", url="about:blank")["targetId"]
    session = send(2, "Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    return Page(ws, session)
