"""Real HTTP clients for benchmarks/load_submissions.py: logged-in sessions, forms read as a browser reads them
(the CSRF token and the hidden submission_token come from the page), every request timed.

Thread-safe by construction: no requests.Session is shared between threads; each request carries its
user's cookies. The site's cookies are Secure (DEBUG off), which a cookie jar would not send back over
plain http, so they are kept here as values: loopback stands in for the TLS proxy.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser

import requests

TIMEOUT_S = 120
_RUN_LOCATION = re.compile(r"/runs/(\d+)/$")
_ERRORLIST = re.compile(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', re.S)
_TAG = re.compile(r"<[^>]+>")


class _Inputs(HTMLParser):
    """name -> value of every <input> of a page."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        if tag == "input":
            attributes = dict(attrs)
            if attributes.get("name"):
                self.values.setdefault(attributes["name"], attributes.get("value") or "")


def page_inputs(html: str) -> dict[str, str]:
    parser = _Inputs()
    parser.feed(html)
    return parser.values


def page_errors(html: str) -> str:
    """The form errors a re-rendered form shows, as one line."""
    items = [unescape(_TAG.sub(" ", block)) for block in _ERRORLIST.findall(html)]
    return " | ".join(" ".join(item.split()) for item in items)[:500]


@dataclass
class Timings:
    """Every request's kind, status and seconds; shared by the threads."""

    records: list[tuple[str, int, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, status: int, seconds: float) -> None:
        with self._lock:
            self.records.append((kind, status, seconds))

    def server_errors(self) -> list[tuple[str, int, float]]:
        return [record for record in self.records if record[1] >= 500]

    def summary(self) -> dict[str, dict[str, float]]:
        kinds: dict[str, list[float]] = {}
        for kind, _status, seconds in self.records:
            kinds.setdefault(kind, []).append(seconds)
        return {
            kind: {
                "count": len(values),
                "p50": percentile(values, 50),
                "p95": percentile(values, 95),
                "max": max(values),
            }
            for kind, values in kinds.items()
        }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


class SiteClient:
    """One user's logged-in browser, minus the browser."""

    def __init__(self, base_url: str, timings: Timings):
        self.base_url = base_url
        self.timings = timings
        self.cookies: dict[str, str] = {}

    def _request(self, kind: str, method: str, path: str, **kwargs) -> requests.Response:
        started = time.monotonic()
        try:
            response = requests.request(
                method,
                self.base_url + path,
                cookies=dict(self.cookies),
                allow_redirects=False,
                timeout=TIMEOUT_S,
                **kwargs,
            )
        except requests.RequestException:
            self.timings.add(kind, 599, time.monotonic() - started)  # no answer at all counts as a server error
            raise
        self.timings.add(kind, response.status_code, time.monotonic() - started)
        return response

    def get(self, kind: str, path: str) -> requests.Response:
        return self._request(kind, "GET", path)

    def login(self, username: str, password: str) -> None:
        page = self.get("login page", "/accounts/login/")
        self.cookies.update(page.cookies.get_dict())
        data = {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": page_inputs(page.text)["csrfmiddlewaretoken"],
        }
        response = self._request("login", "POST", "/accounts/login/", data=data)
        if response.status_code != 302 or "sessionid" not in response.cookies:
            raise RuntimeError(f"login of {username} failed: HTTP {response.status_code} {page_errors(response.text)}")
        self.cookies.update(response.cookies.get_dict())

    def form_load(self, kind: str, path: str) -> dict[str, str]:
        response = self.get(f"{kind} form", path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {response.status_code}")
        return page_inputs(response.text)

    def form_post(self, kind: str, path: str, data: dict) -> tuple[int, float, int | None, str]:
        """(status, seconds, run id from the redirect, form errors when the form came back)."""
        started = time.monotonic()
        try:
            response = self._request(f"{kind} post", "POST", path, data=data, headers={"Referer": self.base_url + path})
        except requests.RequestException as exc:
            return 599, time.monotonic() - started, None, f"no answer: {exc}"
        seconds = time.monotonic() - started
        if response.status_code == 302:
            match = _RUN_LOCATION.search(response.headers.get("Location", ""))
            return (
                302,
                seconds,
                int(match.group(1)) if match else None,
                "" if match else response.headers.get("Location", ""),
            )
        return response.status_code, seconds, None, page_errors(response.text) or response.text[:300]


__all__ = ["SiteClient", "Timings", "page_errors", "page_inputs", "percentile"]
