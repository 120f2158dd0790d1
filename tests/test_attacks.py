"""Attacks (issue 7): what a hostile link, client or browser tries, against every adapter.

Three families, each written once and run against Tornado, Flask and WSGI (the ``svc``
fixture of tests/services.py, or one long-running service per adapter for the fuzzers):

- open redirects: known payloads through every place a next URL enters (``safe_next_url``,
  the real login through the fake Hub with raw request lines, ``HubOAuth.get_next_url``,
  and a sealed state cookie carrying one);
- fuzzing (hypothesis): random ``Authorization`` and ``Cookie`` headers and callback query
  strings never get a 5xx and never authenticate anyone without a real credential;
- cookies and state: retired keys, a sibling service's cookie, swapped state cookies, a
  replayed code, an expired or future-dated state.

The scenarios already in tests/test_adapters.py (tampered cookie, a forged cookie of another
client id, a forged state, the victim's unused callback replayed elsewhere, cross-site POST)
are not repeated here.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubauth._protocol import MAX_TOKEN_LENGTH, token_from_authorization
from hubauth._view import safe_next_url
from hubauth.cookies import CookieCodec
from hubauth.oauth import HubOAuth
from hubauth.testing import FakeHub

from .services import (
    ADAPTERS,
    PREFIX,
    SECRET,
    Service,
    browser,
    free_port,
    log_in,
    login_cookie,
    make_auth,
    serve,
)

TIMEOUT = 15  # seconds, for every socket operation and HTTP request
EVIL = "evil.example"
CALLBACK = PREFIX + "oauth_callback"
FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# ---------------------------------------------------------------- the payloads

PAYLOADS = [
    # scheme-relative, and slash/backslash mixes (CVE-2019-10255 and relatives)
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "//evil.example/",
    "//evil.example/%2e%2e",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/.\\evil.example",
    "//\\evil.example",
    # percent-encoded slashes and backslashes: once, twice, three times
    "/%2F%2Fevil.example",
    "/%2f%2fevil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/%2f%5cevil.example",
    "%2F%2Fevil.example",
    "/%252F%252Fevil.example",
    "/%25252F%25252Fevil.example",
    "/%255Cevil.example",
    "//%65vil.example",
    # absolute URLs and other schemes, in any case
    "https://evil.example",
    "http://evil.example",
    "HTTPS://evil.example/",
    "http:evil.example",
    "http:/evil.example",
    "https:evil.example",
    "http:\\\\evil.example",
    "https:/\\evil.example",
    "ftp://evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "javascript://%0aalert(1)",
    "java\tscript:alert(1)",
    " javascript:alert(1)",
    "data:text/html,x",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "evil.example",
    ".evil.example",
    "@evil.example",
    # userinfo: which side of the @ is the host?
    "//evil.example@127.0.0.1",
    "//127.0.0.1@evil.example",
    "//user:pass@evil.example",
    "http://127.0.0.1@evil.example",
    "https://user:pass@evil.example/",
    # whitespace and controls, which browsers strip from URLs (leaving "//evil.example")
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/ /evil.example",
    " //evil.example",
    "  /\\evil.example",
    "\t//evil.example",
    "/\x00/evil.example",
    "/%09/evil.example",
    "/%0a/evil.example",
    "/%0d%0a/evil.example",
    "/%00//evil.example",
    "/%20/evil.example",
    # CRLF header injection
    "/x\r\nLocation: http://evil.example",
    "/%0D%0ALocation:%20http://evil.example",
    "/x?%0d%0aSet-Cookie:%20evil=1",
    # unicode look-alikes of "/" and "\" (and an ideographic full stop)
    "/\uff0fevil.example",
    "/\u2215evil.example",
    "/\u2044evil.example",
    "/\uff3cevil.example",
    "\uff0f\uff0fevil.example",
    "/\u3002evil.example",
    "/%EF%BC%8Fevil.example",
    # same-origin paths that only mention evil.example (see KEPT)
    "/@evil.example",
    "/.//evil.example",
    "/..//evil.example",
    "/%2e%2e//evil.example",
    "/services/test-service/../..//evil.example",
    "/services/test-service/page?next=//evil.example",
    "/services/test-service/page#//evil.example",
]

# Payloads that are local paths and may be kept as next URLs. ``/@evil.example`` is the path
# segment "@evil.example" on this origin: the "@" only means userinfo after "//", so a
# browser resolves it to http://<service host>/@evil.example. The dot-segment forms also stay
# on this origin (the browser removes the dot segments from the path, never the host), and so
# do a query or fragment that mentions another host, or a percent-encoded look-alike, which a
# browser keeps encoded in the path. Every other payload must give the fallback.
KEPT = frozenset(
    {
        "/@evil.example",
        "/.//evil.example",
        "/..//evil.example",
        "/%2e%2e//evil.example",
        "/services/test-service/../..//evil.example",
        "/services/test-service/page?next=//evil.example",
        "/services/test-service/page#//evil.example",
        "/x?%0d%0aSet-Cookie:%20evil=1",
        "/%EF%BC%8Fevil.example",
    }
)

_C0_OR_SPACE = "".join(chr(i) for i in range(0x21))


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


def browser_resolve(base: str, ref: str) -> str:
    """``ref`` resolved against ``base`` as a browser does (WHATWG URL, for http and https):
    leading and trailing C0 controls and spaces stripped, tabs and newlines removed anywhere,
    ``\\`` read as ``/``, any number of slashes before a host (``///host``, ``http:host`` when
    the base is https). Stricter than ``urljoin`` alone, which keeps ``/\\host`` and
    ``///host`` paths.
    """
    ref = re.sub("[\t\n\r]", "", ref.strip(_C0_OR_SPACE)).replace("\\", "/")
    base_scheme = urllib.parse.urlsplit(base).scheme
    m = _SCHEME.match(ref)
    if m is not None:
        scheme, rest = m.group(1).lower(), ref[m.end() :]
        if scheme not in ("http", "https"):
            return ref  # javascript:, data:, ...: anything but this origin
        if scheme == base_scheme and not rest.startswith("//"):
            return urllib.parse.urljoin(base, rest)  # "http:x" is relative to an http base
        return f"{scheme}://{rest.lstrip('/')}"
    if ref.startswith("//"):
        return f"{base_scheme}://{ref.lstrip('/')}"
    return urllib.parse.urljoin(base, ref)


def stays_on(origin: str, base: str, location: str) -> bool:
    """Whether a browser following ``location`` from ``base`` stays on ``origin``."""
    target = urllib.parse.urlsplit(browser_resolve(base, location))
    want = urllib.parse.urlsplit(origin)
    return (target.scheme, target.netloc) == (want.scheme, want.netloc)


def origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def is_local_path(location: str) -> bool:
    """A same-origin path: ``/...``, never ``//host``, ``/\\host``, a scheme, a backslash in
    the path (browsers read it as ``/``), whitespace or a control character.
    """
    path = re.split("[?#]", location, maxsplit=1)[0]
    return (
        location.startswith("/")
        and not location.startswith(("//", "/\\"))
        and "\\" not in path
        and not any(c in _C0_OR_SPACE or c == "\x7f" for c in location)
        and not urllib.parse.urlsplit(location).scheme
        and not urllib.parse.urlsplit(location).netloc
    )


# ---------------------------------------------------------------- a raw HTTP client


@dataclass
class Answer:
    """What came back on the wire; ``status`` is 0 when it was not an HTTP/1.x answer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes = field(repr=False)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


class _Recorder(io.RawIOBase):
    """The socket as http.client reads it, keeping every byte read (for the raw header block)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.seen = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.sock.recv_into(buffer)
        self.seen += bytes(buffer[:n])
        return n

    def makefile(self, *args: object, **kwargs: object) -> io.BufferedReader:
        return io.BufferedReader(self)


def send(
    origin: str,
    target: bytes,
    headers: Sequence[tuple[str, str]] = (),
    *,
    method: bytes = b"GET",
    host: bytes | None = None,
    body: bytes = b"",
) -> Answer:
    """``method target HTTP/1.1`` sent as given, byte for byte (http.client and requests
    would refuse or re-encode most payloads). ``status`` 0: no HTTP/1.x answer came back.
    """
    parts = urllib.parse.urlsplit(origin)
    lines = [
        method + b" " + target + b" HTTP/1.1",
        b"Host: " + (host if host is not None else parts.netloc.encode()),
        b"Connection: close",
        *(f"{k}: {v}".encode("latin-1") for k, v in headers),
    ]
    if body or method not in (b"GET", b"HEAD"):
        lines.append(b"Content-Length: %d" % len(body))
    with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT) as s:
        s.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        recorder = _Recorder(s)
        response = http.client.HTTPResponse(recorder)  # type: ignore[arg-type]
        try:
            response.begin()
            body = response.read()
        except (http.client.HTTPException, ConnectionError):
            return Answer(0, [], b"", bytes(recorder.seen))
    found = [(k.lower(), v) for k, v in response.msg.items()]
    return Answer(response.status, found, body, bytes(recorder.seen))


def on_the_wire(text: str) -> bytes:
    """``text`` as a browser would put it in a request target: controls, spaces, ``#`` and
    non-ASCII percent-encoded (as UTF-8); everything else, backslashes included, left raw.
    """
    return "".join(
        c if "!" <= c <= "~" and c != "#" else urllib.parse.quote(c, safe="") for c in text
    ).encode("ascii")


# ---------------------------------------------------------------- following a login


@dataclass
class Hop:
    url: str
    answer: Answer

    @property
    def location(self) -> str | None:
        return self.answer.header("location")

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path


def _update_jar(jar: dict[str, str], answer: Answer) -> None:
    for header in answer.all("set-cookie"):
        pair, _, attrs = header.partition(";")
        name, _, value = pair.partition("=")
        cleared = "max-age=0" in attrs.lower().replace(" ", "") or "1970" in attrs
        if cleared or not value:
            jar.pop(name.strip(), None)
        else:
            jar[name.strip()] = value.strip()


def follow(
    svc: Service,
    target: bytes,
    jar: dict[str, str] | None = None,
    headers: Sequence[tuple[str, str]] = (),
    hops: int = 8,
) -> list[Hop]:
    """Navigate to ``target`` on the service like a browser: follow redirects through the fake
    Hub (which approves as ``testuser``) and back, keeping the service's cookies in ``jar``.
    Stops at the first redirect that would leave the service and the Hub.
    """
    jar = {} if jar is None else jar
    origins = {svc.url, svc.hub.url}
    url = svc.url + target.decode("latin-1")
    chain: list[Hop] = []
    for _ in range(hops):
        origin = svc.url if chain == [] else origin_of(url)
        extra = [("Accept", "text/html"), *headers]
        if origin == svc.url and jar:
            extra.append(("Cookie", "; ".join(f"{k}={v}" for k, v in jar.items())))
        answer = send(origin, target, extra)
        chain.append(Hop(url, answer))
        if origin == svc.url:
            _update_jar(jar, answer)
        location = answer.header("location")
        if answer.status not in (301, 302, 303, 307, 308) or location is None:
            break
        url = browser_resolve(url, location)
        if not any(stays_on(o, url, url) for o in origins):
            break  # an escape: check_chain reports it
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        target = on_the_wire(path)
    return chain


def check_chain(svc: Service, chain: list[Hop]) -> list[str]:
    """Everything wrong with a chain of hops: a 5xx, a Location leaving the service and the
    Hub, or a callback that does not send the browser on to a same-origin path.
    """
    problems = []
    for hop in chain:
        status, location = hop.answer.status, hop.location
        if status >= 500:
            problems.append(f"{hop.url} answered {status}")
        if location is None:
            continue
        where = urllib.parse.urlsplit(browser_resolve(hop.url, location))
        if EVIL in where.netloc or not any(
            stays_on(o, hop.url, location) for o in (svc.url, svc.hub.url)
        ):
            problems.append(f"{hop.url} -> Location {location!r} leaves for {where.netloc!r}")
        ours = location.startswith((svc.url + "/", svc.hub.url + "/")) or is_local_path(location)
        if origin_of(hop.url) == svc.url and not ours:
            problems.append(f"{hop.url} -> Location {location!r} is not a local path")
        if hop.path == CALLBACK and status == 302 and not is_local_path(location):
            problems.append(f"callback -> Location {location!r} is not a same-origin path")
    return problems


def targets(payload: str) -> list[bytes]:
    """Every place in a request line where a payload can ride into the next URL."""
    quoted = urllib.parse.quote(payload, safe="")
    out = [
        on_the_wire(f"{PREFIX}page?x={payload}"),
        f"{PREFIX}page?next={quoted}".encode(),
        on_the_wire(PREFIX + payload),
        on_the_wire(f"{PREFIX.rstrip('/')}?{payload}"),  # the add-a-slash redirect
    ]
    if payload.startswith("/"):
        out.append(on_the_wire(PREFIX.rstrip("/") + payload))
        out.append(on_the_wire(payload))
    return out


# ---------------------------------------------------------------- (i) safe_next_url


def test_there_are_enough_payloads() -> None:
    assert len(set(PAYLOADS)) == len(PAYLOADS) >= 30
    assert set(PAYLOADS) >= KEPT


@pytest.mark.parametrize("payload", PAYLOADS)
def test_safe_next_url_never_leaves_the_origin(payload: str) -> None:
    fallback = PREFIX
    origin = "http://127.0.0.1:8000"
    result = safe_next_url(payload, fallback)
    assert result in (fallback, payload)
    assert stays_on(origin, f"{origin}{PREFIX}oauth_callback", result)
    resolved = urllib.parse.urlsplit(urllib.parse.urljoin(origin + CALLBACK, result))
    assert resolved.scheme == "http" and resolved.netloc == "127.0.0.1:8000"
    assert is_local_path(result)
    if payload not in KEPT:
        assert result == fallback


# ---------------------------------------------------------------- (iii) get_next_url


@pytest.mark.parametrize("payload", PAYLOADS)
def test_get_next_url_with_a_hostile_state(fake_hub: FakeHub, payload: str) -> None:
    """A state mapping is what a caller decoded; whatever its ``next``, the answer is local."""
    auth = make_auth(fake_hub, "http://127.0.0.1:8000")
    try:
        result = auth.get_next_url({"next": payload})
        assert result in (auth.base_url, payload) and is_local_path(result)
        assert stays_on("http://127.0.0.1:8000", "http://127.0.0.1:8000" + CALLBACK, result)
        if payload not in KEPT:
            assert result == auth.base_url
        for odd in (None, 1, [payload], {"next": payload}):
            assert auth.get_next_url({"next": odd}) == auth.base_url
        assert auth.get_next_url(payload) == auth.base_url  # a bare state id carries no URL
        assert auth.get_next_url(None) == auth.base_url
    finally:
        auth.close()


# ---------------------------------------------------------------- (ii) through the login


def test_open_redirect_payloads_through_the_real_login(svc: Service) -> None:
    """The attacker links a victim to the service with a payload in the URL (query, path, or
    right after the prefix), hoping the login sends the victim on to evil.example. Every hop
    of every login must stay on the service or the Hub, and the callback must answer with a
    same-origin path.
    """
    problems: list[str] = []
    for payload in PAYLOADS:
        chains = [(target, follow(svc, target)) for target in targets(payload)]
        for target, chain in chains:
            problems += [f"[{payload!r} as {target!r}] {p}" for p in check_chain(svc, chain)]
        # The query form reaches the protected page: the login must really have happened.
        chain = chains[0][1]
        assert any(h.path == CALLBACK for h in chain), (payload, [h.url for h in chain])
        last = chain[-1].answer
        assert last.status == 200 and last.json()["name"] == "testuser", (payload, last)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "target",
    [
        b"/services/test-service/page?x=\r\nLocation: http://evil.example",
        b"/services/test-service/page?x=%0d%0aLocation:%20http://evil.example",
        b"/services/test-service/\r\nLocation: http://evil.example/",
        b"/services/test-service/page?x=\t//evil.example",
        b"/services/test-service/\t//evil.example",
        b"/services/test-service/\xef\xbc\x8fevil.example",
        b"/services/test-service/page?x=\xef\xbc\x8f\xef\xbc\x8fevil.example",
        b"//evil.example/services/test-service/page",
        b"http://evil.example/services/test-service/page",
        b"\\\\evil.example\\services\\test-service\\page",
    ],
)
def test_raw_request_lines_cannot_inject_a_location(svc: Service, target: bytes) -> None:
    """The attacker sends bytes a browser never would (a raw CRLF, a tab, UTF-8, an absolute
    or backslashed request target), hoping to split the answer's headers or to smuggle a host
    into the next URL. Whatever the server makes of it, no Location header may point away,
    no header line may be injected, and nothing may crash.
    """
    answer = send(svc.url, target, [("Accept", "text/html")])
    injected = [
        line
        for line in answer.raw.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]
        if EVIL.encode() in line
    ]
    assert not injected, (target, answer.raw[:500])
    assert answer.status < 500, (target, answer.raw[:500])
    if answer.status:
        problems = check_chain(svc, follow(svc, target))
        assert not problems, problems


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Forwarded-Host", EVIL)],
        [("X-Forwarded-Host", EVIL), ("X-Forwarded-Proto", "https")],
        [("Forwarded", f"host={EVIL};proto=https")],
        [("X-Original-URL", f"//{EVIL}/"), ("X-Rewrite-URL", f"//{EVIL}/")],
        [("Referer", f"http://{EVIL}/")],
    ],
)
def test_forwarded_host_headers_do_not_steer_the_login(
    svc: Service, headers: list[tuple[str, str]]
) -> None:
    """The attacker (or a misconfigured proxy in front) sets host-ish headers, hoping hubauth
    builds the redirect URI or the next URL from them. The login must stay on the service and
    the Hub, and the callback still land on the deep link.
    """
    chain = follow(svc, b"/services/test-service/page?q=1", headers=headers)
    assert not check_chain(svc, chain)
    assert chain[-1].answer.status == 200 and chain[-1].url == svc.page("page?q=1")
    spoofed = send(
        svc.url, b"/services/test-service/page", [("Accept", "text/html")], host=EVIL.encode()
    )
    assert spoofed.status < 500
    if spoofed.status == 302:
        location = spoofed.header("location") or ""
        assert EVIL not in urllib.parse.urlsplit(location).netloc


def test_a_sealed_state_with_a_hostile_next_still_lands_locally(svc: Service) -> None:
    """Defence in depth: the ``state`` parameter is sealed with the service's own key, but
    say an older release (or a bug elsewhere) had sealed a hostile next URL into it. The
    callback checks the next URL again when it opens the state, so the browser still lands
    locally.
    """
    problems = []
    purpose, name = "oauth-state-param", svc.auth.state_cookie_name
    for payload in PAYLOADS:
        jar: dict[str, str] = {}
        start = send(svc.url, b"/services/test-service/page", [("Accept", "text/html")])
        _update_jar(jar, start)
        authz = urllib.parse.urlsplit(start.header("location") or "")
        query = dict(urllib.parse.parse_qsl(authz.query))
        sealed = svc.auth.cookies.decode(purpose, name, query["state"], max_age=600)
        assert sealed is not None
        query["state"] = svc.auth.cookies.encode(purpose, name, {**sealed, "n": payload})
        at_hub = send(svc.hub.url, f"{authz.path}?{urllib.parse.urlencode(query)}".encode())
        back = urllib.parse.urlsplit(at_hub.header("location") or "")
        chain = follow(svc, f"{back.path}?{back.query}".encode(), jar)
        problems += [f"[{payload!r}] {p}" for p in check_chain(svc, chain)]
        done = chain[0].answer
        assert chain[0].path == CALLBACK and done.status == 302, (payload, done)
        location = done.header("location") or ""
        assert location in (PREFIX, payload), (payload, location)
        if payload not in KEPT:
            assert location == PREFIX, (payload, location)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- (b) fuzzing


@dataclass
class FuzzTarget:
    """A running service, and real credentials for it made by the test that uses them, so
    that the token-in-logs guard of tests/conftest.py watches them during that test.
    """

    svc: Service
    made: dict[tuple[str, str], str] = field(default_factory=dict)

    def _real(self, kind: str, make: Callable[[], str]) -> str:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
        if (test, kind) not in self.made:
            self.made[test, kind] = make()
        return self.made[test, kind]

    def token(self) -> str:
        """A real API token of ``fuzz-bob``."""
        return self._real("token", lambda: self.svc.hub.add_user("fuzz-bob"))

    def cookie(self) -> str:
        """A real login cookie of ``fuzz-carol``, from a real login through the Hub."""

        def make() -> str:
            b = browser()
            log_in(self.svc, b, "fuzz-carol")
            return login_cookie(self.svc, b)

        return self._real("cookie", make)


@pytest.fixture(scope="module", params=ADAPTERS)
def fuzz_target(request: pytest.FixtureRequest) -> Iterator[FuzzTarget]:
    """One service per adapter for all of a fuzz test's examples (hypothesis runs each test
    function many times; starting a service per example would be slow for nothing).
    """
    with FakeHub() as hub:
        port = free_port()
        auth = make_auth(hub, f"http://127.0.0.1:{port}")
        with serve(request.param, auth, port) as url:
            yield FuzzTarget(Service(url, auth, hub, request.param))
        auth.close()


ALLOWED = {200, 302, 400, 401, 403}
REAL = "<the real credential>"
_HEADER_TEXT = st.text(
    st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=200
)  # any latin-1 character a header value can carry on one line


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def sets_login_cookie(answer: Answer, name: str) -> bool:
    """Whether ``answer`` sets (not clears) the login cookie ``name``."""
    jar: dict[str, str] = {}
    _update_jar(
        jar, Answer(answer.status, [h for h in answer.headers if h[0] == "set-cookie"], b"", b"")
    )
    return name in jar


def _check_answer(answer: Answer, *, real: str, who: str, cookie_name: str) -> None:
    """Never a 5xx; a 200 only for the real credential's owner; never a login cookie set."""
    assert answer.status in ALLOWED, answer.raw[:500]
    if answer.status == 200:
        me = answer.json()
        assert (me["name"], me["token"]) == (who, _digest(real)), me
    assert not sets_login_cookie(answer, cookie_name), answer.all("set-cookie")


# Characters Tornado's HTTP parser refuses in a header value, logging the whole value at
# INFO: never put the real token next to them, or the token-in-logs guard (conftest) trips.
_REFUSED_BY_TORNADO = "".join(chr(i) for i in range(0x20) if i != 0x09) + "\x7f"
_CLEAN_TEXT = st.text(
    st.characters(codec="latin-1", exclude_characters=_REFUSED_BY_TORNADO), max_size=8
)


@st.composite
def authorization_values(draw: st.DrawFn) -> tuple[str, str, str]:
    """``(prefix, body, mangle)``: random text, or a scheme and separator followed by random
    text or by the real token (``body == REAL``) with ``mangle`` after it (or before it, when
    ``mangle`` starts with ``-``).
    """
    shape = draw(st.sampled_from(["random", "scheme+random", "scheme+real"]))
    if shape == "random":
        return "", draw(_HEADER_TEXT), ""
    if shape == "scheme+random":
        scheme = draw(st.one_of(st.sampled_from(["token", "bearer", "Basic"]), _HEADER_TEXT))
        return scheme + draw(st.sampled_from([" ", "", "\t", "\x00"])), draw(_HEADER_TEXT), ""
    scheme = draw(
        st.one_of(
            st.sampled_from(["token", "bearer", "Token", "BEARER", "Basic", "", "tokens"]),
            _CLEAN_TEXT,
        )
    )
    sep = draw(st.sampled_from([" ", "  ", "\t", "", "\xa0", "\x85"]))
    mangle = draw(st.one_of(st.sampled_from(["", "x", " extra", ",", "\xa0", "%00"]), _CLEAN_TEXT))
    return scheme + sep, REAL, mangle if draw(st.booleans()) else "-" + mangle


@FUZZ
@given(value=authorization_values())
def test_fuzz_authorization_header(fuzz_target: FuzzTarget, value: tuple[str, str, str]) -> None:
    """Random ``Authorization`` values (and the real token with a wrong scheme or mangled):
    never a 5xx, and only the real token, intact but for surrounding whitespace,
    authenticates (as its owner).
    """
    prefix, body, mangle = value
    real = fuzz_target.token()
    if body == REAL:
        body = mangle[1:] + real if mangle.startswith("-") else real + mangle
    raw = prefix + body
    answer = send(
        fuzz_target.svc.url,
        f"{PREFIX}page".encode(),
        [("Accept", "text/html"), ("Authorization", raw)],
    )
    _check_answer(answer, real=real, who="fuzz-bob", cookie_name=fuzz_target.svc.auth.cookie_name)
    if answer.status == 200:
        assert real in raw


def test_the_real_token_does_authenticate_the_fuzz_target(fuzz_target: FuzzTarget) -> None:
    """The control for the fuzzers: the credentials they mangle are real."""
    real = fuzz_target.token()
    answer = send(
        fuzz_target.svc.url, f"{PREFIX}page".encode(), [("Authorization", f"token {real}")]
    )
    assert answer.status == 200 and answer.json()["name"] == "fuzz-bob"
    cookie = fuzz_target.cookie()
    name = fuzz_target.svc.auth.cookie_name
    answer = send(fuzz_target.svc.url, f"{PREFIX}page".encode(), [("Cookie", f"{name}={cookie}")])
    assert answer.status == 200 and answer.json()["name"] == "fuzz-carol"


_COOKIE_NAMES = st.one_of(
    st.sampled_from(
        [
            "service-test-service",
            "service-test-service-oauth-state",
            "service-test-service-oauth-state-000000000000",
            "__Host-service-test-service",
            "jupyterhub-session-id",
            "_xsrf",
            "",
        ]
    ),
    st.text(st.characters(codec="latin-1", exclude_characters="\r\n;="), max_size=20),
)


@st.composite
def cookie_headers(draw: st.DrawFn) -> list[tuple[str, str]]:
    """A ``Cookie`` header as ``(name, value)`` pairs, where ``REAL`` in a value stands for
    the real login cookie (intact, or with something around it).
    """
    if draw(st.booleans()):
        return [("", draw(_HEADER_TEXT))]  # free text, joined as is
    pairs = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(_COOKIE_NAMES)
        value = draw(
            st.one_of(
                st.text(st.characters(codec="latin-1", exclude_characters="\r\n;"), max_size=80),
                st.sampled_from([REAL, f"{REAL}=", f"{REAL}x", f'"{REAL}"', f"x{REAL}"]),
            )
        )
        pairs.append((name, value))
    return pairs


@FUZZ
@given(pairs=cookie_headers(), accept=st.sampled_from(["text/html", "application/json"]))
def test_fuzz_cookie_header(
    fuzz_target: FuzzTarget, pairs: list[tuple[str, str]], accept: str
) -> None:
    """Random ``Cookie`` headers, with the service's own cookie names and mangled copies of a
    real login cookie: never a 5xx, and only an intact real login cookie under the service's
    cookie name authenticates (as its owner).
    """
    real_cookie = fuzz_target.cookie()
    text = "; ".join((f"{n}={v}" if n else v).replace(REAL, real_cookie) for n, v in pairs)
    answer = send(
        fuzz_target.svc.url,
        f"{PREFIX}page".encode(),
        [("Accept", accept), ("Cookie", text)],
    )
    logged = fuzz_target.svc.auth.read_login_cookie([real_cookie])
    assert logged is not None
    _check_answer(
        answer, real=logged[0], who="fuzz-carol", cookie_name=fuzz_target.svc.auth.cookie_name
    )
    if answer.status == 200:
        name = fuzz_target.svc.auth.cookie_name
        # RFC 6265: a cookie value may be sent in double quotes; it is the same credential.
        assert f"{name}={real_cookie}" in text or f'{name}="{real_cookie}"' in text


_QUERY_VALUE = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", "x", "%", "%zz", "%ff", "\x00", "a" * 3000, "//evil.example"]),
)


@FUZZ
@given(
    params=st.lists(
        st.tuples(
            st.sampled_from(["code", "state", "error", "error_description", "next", "x"]),
            _QUERY_VALUE,
        ),
        max_size=6,
    ),
    raw_query=st.one_of(st.none(), st.text(st.characters(codec="latin-1"), max_size=200)),
    with_state_cookie=st.booleans(),
)
def test_fuzz_callback_query(
    fuzz_target: FuzzTarget,
    params: list[tuple[str, str]],
    raw_query: str | None,
    with_state_cookie: bool,
) -> None:
    """Random callback query strings (code, state, error), as pairs or as raw text, with or
    without a state cookie of a login in flight: never a 5xx, never a login cookie, never a
    Location away from the service and the Hub.
    """
    svc = fuzz_target.svc
    query = (
        urllib.parse.urlencode(params)
        if raw_query is None
        else urllib.parse.quote(raw_query, safe="&=%+/?:@")
    )
    headers = [("Accept", "text/html")]
    if with_state_cookie:
        start = send(svc.url, f"{PREFIX}page".encode(), headers)
        jar: dict[str, str] = {}
        _update_jar(jar, start)
        headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in jar.items())))
    answer = send(svc.url, f"{CALLBACK}?{query}".encode("latin-1"), headers)
    assert answer.status in ALLOWED - {200}, answer.raw[:500]
    assert not sets_login_cookie(answer, svc.auth.cookie_name), answer.all("set-cookie")
    location = answer.header("location")
    if location is not None:
        assert is_local_path(location), location


_URL_PIECES = [*"/\\.:@?#%25cCfF eEvilx", "\t", "\n", "\r", "\x00", "\uff0f", "\u2215"]
_URL_PIECES += ["http", "//", "%2f", "%5c", "evil.example", "%2e%2e"]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=80),
        st.lists(
            st.sampled_from(_URL_PIECES),
            max_size=20,
        ).map("".join),
    )
)
def test_fuzz_safe_next_url(url: str) -> None:
    """Any text: the fallback, or the text itself when it is a same-origin path."""
    origin = "http://127.0.0.1:8000"
    result = safe_next_url(url, PREFIX)
    assert result in (PREFIX, url)
    if result == url:
        assert is_local_path(url), url
        assert stays_on(origin, origin + CALLBACK, url), url
        for _ in range(3):  # also after a proxy or a browser decoded it again
            url = urllib.parse.unquote(url)
            assert not url.startswith(("//", "/\\")), url


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_token_from_authorization(header: str) -> None:
    """Any header: ``None``, or a printable-ASCII token without spaces, taken from the text
    after a ``token``/``bearer`` scheme (any case).
    """
    token = token_from_authorization(header)
    if token is None:
        return
    assert 0 < len(token) <= MAX_TOKEN_LENGTH
    assert all("!" <= c <= "~" for c in token)
    scheme, _, rest = header.strip().partition(" ")
    assert scheme.lower() in ("token", "bearer")
    assert rest.strip() == token


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(["token", "bearer", "Token", "Bearer", "TOKEN", "bEaReR"]),
    token=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1),
)
def test_fuzz_token_from_authorization_round_trip(scheme: str, token: str) -> None:
    assert token_from_authorization(f"{scheme} {token}") == token
    assert token_from_authorization(f"  {scheme}   {token}  ") == token
    assert token_from_authorization(f"{scheme}{token}") is None
    assert token_from_authorization(f"Basic {token}") is None


# ---------------------------------------------------------------- (c) cookies and state


@contextmanager
def _service(adapter: str, hub: FakeHub, **settings: Any) -> Iterator[Service]:
    """The test service for ``adapter`` with ``settings`` (e.g. another ``cookie_secret``)
    on a new port.
    """
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    settings.setdefault("cookie_secret", SECRET)
    auth = HubOAuth(
        environ=hub.service_env("test-service", url=origin), hub_host=hub.url, **settings
    )
    try:
        with serve(adapter, auth, port) as url:
            yield Service(url, auth, hub, adapter)
    finally:
        auth.close()


NEW_SECRET = "f0f5a199fa642226bbc064efc10a4a3563e87ef97aba8542f2fd785bf9b2b4ac"


def test_cookie_under_a_retired_key(svc: Service) -> None:
    """Key rotation. A login cookie sealed under the old secret keeps working while the old
    secret is still listed after the new one ("new,old"), so rotating logs nobody out; once
    the old secret is dropped, a cookie under it (say, one copied when that key leaked) is
    refused: a browser goes back to log in, an API-style request gets 401.
    """
    b = browser()
    assert log_in(svc, b, "alice").json()["name"] == "alice"  # sealed under SECRET
    old_cookie = {svc.auth.cookie_name: login_cookie(svc, b)}
    with _service(svc.adapter, svc.hub, cookie_secret=f"{NEW_SECRET},{SECRET}") as rotated:
        r = requests.get(rotated.page(), cookies=old_cookie, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 200 and r.json()["name"] == "alice", r.text
        # New cookies are sealed under the new secret, which the old service cannot read.
        fresh = browser()
        assert log_in(rotated, fresh, "alice").status_code == 200
        new_value = login_cookie(rotated, fresh)
        assert rotated.auth.read_login_cookie([new_value]) is not None
        assert svc.auth.read_login_cookie([new_value]) is None
    with _service(svc.adapter, svc.hub, cookie_secret=NEW_SECRET) as retired:
        r = requests.get(
            retired.page(),
            cookies=old_cookie,
            headers={"Accept": "text/html"},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert r.status_code == 302 and r.headers["Location"].startswith(svc.hub.url)
        r = requests.get(
            retired.page(),
            cookies=old_cookie,
            headers={"Accept": "application/json"},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert r.status_code == 401


def test_sibling_service_cookie_does_not_log_in(svc: Service) -> None:
    """Two services share HUBAUTH_COOKIE_SECRET (a common shortcut) and the user logged in to
    the sibling for real. Its cookie is sent along (as a browser does with ``__Host-``
    cookies on ``Path=/``), or copied under this service's cookie name: neither logs in
    here, although the token inside is a real one the Hub knows and that this service would
    accept as a token. The cookie is bound to the client it was issued for.
    """
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = svc.hub.service_env("sibling", url=origin, scopes=["access:services"])
    # The sibling runs the same routes (under this prefix) on its own port and client id.
    env["JUPYTERHUB_SERVICE_PREFIX"] = PREFIX
    env["JUPYTERHUB_OAUTH_CALLBACK_URL"] = origin + CALLBACK
    env["JUPYTERHUB_OAUTH_ACCESS_SCOPES"] = json.dumps(["access:services"])
    svc.hub.register_client("service-sibling", origin + CALLBACK, env["JUPYTERHUB_API_TOKEN"])
    sibling_auth = HubOAuth(environ=env, hub_host=svc.hub.url, cookie_secret=SECRET)
    assert sibling_auth.cookie_name != svc.auth.cookie_name
    with serve(svc.adapter, sibling_auth, port) as sibling_url:
        b = browser()
        b.get(f"{svc.hub.url}/hub/login", params={"user": "alice"}, allow_redirects=False)
        r = b.get(f"{sibling_url}{PREFIX}page", timeout=TIMEOUT)
        assert r.status_code == 200 and r.json()["name"] == "alice", r.text
        value = next(c.value for c in b.cookies if c.name == sibling_auth.cookie_name)
        token = sibling_auth.read_login_cookie([value])
        assert token is not None
    sibling_auth.close()
    for cookies in ({sibling_auth.cookie_name: value}, {svc.auth.cookie_name: value}):
        r = requests.get(
            svc.page(),
            cookies=cookies,
            headers={"Accept": "application/json"},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert r.status_code == 401, (list(cookies), r.text)
    # The token itself is real: sent as a token, it is accepted (it is the cookie that isn't).
    r = requests.get(svc.page(), headers={"Authorization": f"token {token[0]}"}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["name"] == "alice"


def _start_login(svc: Service, b: requests.Session, path: str = "page") -> tuple[str, str]:
    """Start a login in ``b``: ``(callback URL with code and state, state cookie name)``."""
    start = b.get(svc.page(path), allow_redirects=False, timeout=TIMEOUT)
    assert start.status_code == 302
    name = start.headers["Set-Cookie"].partition("=")[0]
    at_hub = b.get(start.headers["Location"], allow_redirects=False, timeout=TIMEOUT)
    assert at_hub.status_code == 302
    return at_hub.headers["Location"], name


def test_swapped_state_cookies_do_not_cross_browsers(svc: Service) -> None:
    """Login CSRF: the attacker starts a login in its own browser, stops before the callback,
    and gets the victim (who has a login in flight too) to open the attacker's callback URL,
    so the victim would be logged in as the attacker. It fails: the state in the URL matches
    no state cookie of the victim (both carry the same cookie name, but each value is sealed
    with its own login's id); copying the attacker's state cookie value into the victim's
    browser with the victim's callback, or the victim's with the attacker's, fails too.
    Afterwards both real logins still complete.
    """
    victim, attacker = browser(), browser()
    victim.get(f"{svc.hub.url}/hub/login", params={"user": "victim"}, allow_redirects=False)
    attacker.get(f"{svc.hub.url}/hub/login", params={"user": "mallory"}, allow_redirects=False)
    victim_cb, victim_state = _start_login(svc, victim, "page?who=victim")
    attacker_cb, attacker_state = _start_login(svc, attacker, "page?who=mallory")
    assert victim_state == attacker_state == svc.auth.state_cookie_name  # first logins
    assert victim.cookies[victim_state] != attacker.cookies[attacker_state]

    r = victim.get(attacker_cb, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 403
    swaps = [
        ({victim_state: attacker.cookies[attacker_state]}, victim_cb),
        ({attacker_state: victim.cookies[victim_state]}, attacker_cb),
    ]
    for jar, cb in swaps:
        r = requests.get(cb, cookies=jar, allow_redirects=False, timeout=TIMEOUT)
        assert r.status_code == 403, (jar.keys(), r.text)
        assert svc.auth.cookie_name not in r.headers.get("Set-Cookie", "")
    assert svc.auth.cookie_name not in {c.name for c in victim.cookies}

    r = victim.get(victim_cb, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["name"] == "victim"
    r = attacker.get(attacker_cb, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["name"] == "mallory"


def test_consumed_code_replayed_with_its_state_cookie(svc: Service) -> None:
    """The attacker captured everything of a victim's login: the callback URL (from a log or
    the history) and the state cookie (say, from a shared machine). After the victim's
    callback consumed the code, replaying both in a fresh browser does not log anyone in:
    the Hub refuses a code already used (400), no login cookie is set; in the victim's own
    browser the state cookie is gone, so the replay just goes back to the service.
    """
    victim = browser()
    victim.get(f"{svc.hub.url}/hub/login", params={"user": "victim"}, allow_redirects=False)
    callback, state_name = _start_login(svc, victim)
    stolen = {state_name: victim.cookies[state_name]}
    r = victim.get(callback, timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["name"] == "victim"
    assert state_name not in victim.cookies  # cleared by the callback

    thief = browser()
    r = thief.get(callback, cookies=stolen, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 400 and "already used" in r.text, r.text
    assert svc.auth.cookie_name not in {c.name for c in thief.cookies}
    r = thief.get(svc.page(), cookies=stolen, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 302 and r.headers["Location"].startswith(svc.hub.url)
    # Without the state cookie the same replay is refused before the Hub is even asked.
    exchanges = svc.hub.count("/hub/api/oauth2/token")
    r = browser().get(callback, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 403
    assert svc.hub.count("/hub/api/oauth2/token") == exchanges
    # The victim replaying its own callback is already logged in: sent on, nothing else.
    r = victim.get(callback, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 302 and r.headers["Location"] == PREFIX + "page"
    assert svc.hub.count("/hub/api/oauth2/token") == exchanges


def _reseal_state(svc: Service, b: requests.Session, name: str, issued: float) -> None:
    """Seal ``b``'s state cookie ``name`` again, unchanged but as if issued at ``issued``."""
    payload = svc.auth.cookies.decode("oauth-state", name, b.cookies[name], max_age=600)
    assert payload is not None
    codec = CookieCodec([SECRET], clock=lambda: issued)
    value = codec.encode("oauth-state", name, payload)
    cookie = next(c for c in b.cookies if c.name == name)
    b.cookies.set(name, value, domain=cookie.domain, path=cookie.path)


@pytest.mark.parametrize(
    ("age", "accepted"),
    [(590, True), (601, False), (86_400 * 30, False), (-30, True), (-3600, False)],
)
def test_state_older_than_oauth_state_max_age(svc: Service, age: float, accepted: bool) -> None:
    """The attacker holds on to a login started long ago (a stale callback link and the state
    cookie a shared browser still carries) and finishes it later. A state older than
    ``oauth_state_max_age`` (600 s) is refused with 403 and no login cookie, whatever the
    cookie's own Max-Age said; one dated far in the future is refused too (more clock skew
    than allowed). The controls (590 s old, 30 s ahead) complete: the re-sealing is faithful.
    """
    b = browser()
    callback, name = _start_login(svc, b, "page?aged=1")
    _reseal_state(svc, b, name, time.time() - age)
    r = b.get(callback, allow_redirects=False, timeout=TIMEOUT)
    if accepted:
        assert r.status_code == 302 and r.headers["Location"] == f"{PREFIX}page?aged=1"
        assert svc.auth.cookie_name in {c.name for c in b.cookies}
    else:
        assert r.status_code == 403 and "Try logging in again" in r.text, r.text
        assert svc.auth.cookie_name not in {c.name for c in b.cookies}


def test_state_expiry_follows_the_configured_max_age(fake_hub: FakeHub) -> None:
    """The same attack against a service configured with a short ``oauth_state_max_age`` and
    an injected clock: the login started 31 s ago (by that clock) is refused at once, on
    every adapter.
    """
    now = [time.time()]
    for adapter in ADAPTERS:
        with _service(adapter, fake_hub, oauth_state_max_age=30, clock=lambda: now[0]) as svc:
            b = browser()
            callback, _ = _start_login(svc, b)
            now[0] += 31
            r = b.get(callback, allow_redirects=False, timeout=TIMEOUT)
            assert r.status_code == 403 and "30s" in r.text, (adapter, r.text)
            assert svc.auth.cookie_name not in {c.name for c in b.cookies}
            callback, _ = _start_login(svc, b)
            now[0] += 29
            r = b.get(callback, allow_redirects=False, timeout=TIMEOUT)
            assert r.status_code == 302, (adapter, r.text)


def test_state_cookie_is_not_a_login_cookie_and_back(svc: Service) -> None:
    """Purpose confusion: the attacker presents its own state cookie's value as the login
    cookie, and a real login cookie's value as the state cookie of a callback. Both are
    sealed for one purpose and one cookie name: neither logs anyone in.
    """
    attacker = browser()
    callback, state_name = _start_login(svc, attacker)
    state_value = attacker.cookies[state_name]
    r = requests.get(
        svc.page(),
        cookies={svc.auth.cookie_name: state_value},
        headers={"Accept": "application/json"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 401
    b = browser()
    log_in(svc, b, "alice")
    r = requests.get(
        callback,
        cookies={state_name: login_cookie(svc, b)},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert r.status_code == 403
    assert svc.auth.cookie_name not in r.headers.get("Set-Cookie", "")
