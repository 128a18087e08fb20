"""Just enough of the W3C WebDriver protocol, spoken over HTTP to Debian's chromedriver, for a person's path
through the login page (no client library needed: it is a handful of JSON requests)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from support import wait_for

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def browser_programs() -> tuple[str, str] | None:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


class Browser:
    """One headless Chromium session driven through chromedriver on `port`."""

    def __init__(self, *, port: int, profile: Path, user_agent: str) -> None:
        programs = browser_programs()
        assert programs, "chromium and chromedriver are needed"
        self._chromium, driver = programs
        self._profile, self._user_agent = profile, user_agent
        self._driver = subprocess.Popen(
            [driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        self._session = ""

    def __enter__(self) -> Browser:
        wait_for(self._driver_ready, timeout=30, interval=0.1, what="chromedriver ready")
        options = {
            "binary": self._chromium,
            "args": [*CHROMIUM_ARGS, f"--user-data-dir={self._profile}", f"--user-agent={self._user_agent}"],
        }
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        self._session = self._call("POST", "/session", {"capabilities": capabilities})["sessionId"]
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        try:
            if self._session:
                self._call("DELETE", f"/session/{self._session}")
        finally:
            self._http.close()
            self._driver.terminate()
            self._driver.wait(timeout=30)

    def _driver_ready(self) -> bool:
        try:
            return bool(self._http.get("/status").json()["value"]["ready"])
        except httpx.TransportError:
            return False

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body if body is not None else None)
        payload = response.json()
        assert response.status_code == 200, payload
        return payload["value"]

    def _in_session(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, f"/session/{self._session}{path}", body if body is not None else {})

    def open(self, url: str) -> None:
        self._in_session("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        return str(self._in_session("POST", "/element", {"using": "css selector", "value": css})[ELEMENT])

    def type(self, css: str, text: str) -> None:
        self._in_session("POST", f"/element/{self.find(css)}/value", {"text": text})

    def click(self, css: str) -> None:
        self._in_session("POST", f"/element/{self.find(css)}/click")

    def text(self, css: str) -> str:
        return str(self._in_session("GET", f"/element/{self.find(css)}/text"))

    @property
    def title(self) -> str:
        return str(self._call("GET", f"/session/{self._session}/title"))

    @property
    def url(self) -> str:
        return str(self._call("GET", f"/session/{self._session}/url"))
