"""The I/O-free HTTP/1.1 layer both drivers share: answers in any framing and any split,
garbage of every kind, request bytes that can never be split by what goes into them.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubauth._http import (
    MAX_HEAD_BYTES,
    BodyTooLarge,
    IncompleteResponse,
    ProtocolError,
    ResponseParser,
    encode_request,
    endpoint,
)
from hubauth._protocol import HubRequest

names = st.from_regex(r"X-[A-Za-z0-9]{1,12}", fullmatch=True)
values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)


@st.composite
def answers(draw: st.DrawFn) -> tuple[bytes, int, dict[str, str], bytes, bool]:
    """(bytes on the wire, status, extra headers, body, whether it ends with the stream)."""
    status = draw(st.sampled_from([200, 201, 400, 403, 404, 500, 503]))
    body = draw(st.binary(max_size=3000))
    extra = draw(st.dictionaries(names, values, max_size=5))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    head = [f"HTTP/1.1 {status} Some Reason"] + [f"{k}: {v}" for k, v in extra.items()]
    if framing == "length":
        head.append(f"Content-Length: {len(body)}")
        payload = body
    elif framing == "chunked":
        head.append("Transfer-Encoding: chunked")
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=5)))
        parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"
    else:
        head.append("Connection: close")
        payload = body
    wire = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
    return wire, status, extra, body, framing == "close"


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=300, deadline=None)
@given(answers(), st.lists(st.integers(0, 10_000), max_size=8))
def test_any_answer_split_anywhere_reads_the_same(
    answer: tuple[bytes, int, dict[str, str], bytes, bool], cuts: list[int]
) -> None:
    wire, status, extra, body, until_close = answer
    parser = ResponseParser()
    done = False
    for piece in pieces(wire, cuts):
        done = parser.feed(piece)
    if until_close:
        assert not done
        parser.feed_eof()
    assert parser.done
    assert parser.status == status
    assert bytes(parser.body) == body
    for k, v in extra.items():
        assert parser.headers[k.lower()] == v
    assert parser.keep_alive is not until_close
    assert parser.received == len(wire)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 1000), max_size=4))
def test_garbage_never_raises_anything_but_a_protocol_error(data: bytes, cuts: list[int]) -> None:
    parser = ResponseParser(max_body=200)
    try:
        for piece in pieces(data, cuts):
            if parser.feed(piece):
                break
        else:
            parser.feed_eof()
    except ProtocolError:
        return
    assert parser.done and 100 <= parser.status <= 999


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200).map(lambda b: b"HTTP/1.1 200 OK\r\n" + b),
    st.lists(st.integers(0, 300), max_size=4),
)
def test_mangled_heads_never_raise_anything_but_a_protocol_error(
    data: bytes, cuts: list[int]
) -> None:
    parser = ResponseParser()
    try:
        for piece in pieces(data + b"\r\n\r\n{}", cuts):
            if parser.feed(piece):
                break
        else:
            parser.feed_eof()
    except ProtocolError:
        return
    assert parser.done


def test_blank_lines_before_the_status_line_are_skipped() -> None:
    parser = ResponseParser()
    for piece in (b"\r\n", b"\r", b"\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"):
        parser.feed(piece)
    assert parser.done and parser.body == b"{}"


def test_bytes_after_the_answer_make_the_connection_unusable() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200")
    assert not parser.keep_alive
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert parser.keep_alive
    parser.feed(b"x")
    assert not parser.keep_alive


@pytest.mark.parametrize(
    ("wire", "keep"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", True),
    ],
)
def test_keep_alive_follows_the_version_and_connection_header(wire: bytes, keep: bool) -> None:
    parser = ResponseParser()
    assert parser.feed(wire)
    assert parser.keep_alive is keep


@pytest.mark.parametrize(
    ("wire", "error", "needle"),
    [
        (b"HTTP/2 200\r\n\r\n", ProtocolError, "status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", ProtocolError, "status line"),
        (b"HTTP/1.1 200OK\r\n\r\n", ProtocolError, "malformed"),
        (b"HTTP/1.1 101 Switching\r\n\r\n", ProtocolError, "101"),
        (b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", ProtocolError, "header line"),
        (b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", ProtocolError, "header line"),
        (b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", ProtocolError, "header line"),
        (b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", ProtocolError, "control"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", ProtocolError, "not a number"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", ProtocolError, "not a number"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", ProtocolError, "unsupported"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n", BodyTooLarge, "over"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n", BodyTooLarge, "over"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            ProtocolError,
            "longer",
        ),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", ProtocolError, "more than 100"),
    ],
)
def test_malformed_answers(wire: bytes, error: type[Exception], needle: str) -> None:
    with pytest.raises(error, match=needle):
        ResponseParser().feed(wire)


def test_limits_on_heads_bodies_and_chunk_lines() -> None:
    with pytest.raises(ProtocolError, match="exceed"):
        ResponseParser().feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD_BYTES)
    with pytest.raises(BodyTooLarge):
        ResponseParser(max_body=10).feed(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 11)
    with pytest.raises(ProtocolError, match="too long"):
        ResponseParser().feed(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 2000
        )


def test_an_early_end_says_whether_anything_came() -> None:
    parser = ResponseParser()
    with pytest.raises(IncompleteResponse, match="without an answer") as e:
        parser.feed_eof()
    assert e.value.received == 0
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
    with pytest.raises(IncompleteResponse, match="before a full answer") as e:
        parser.feed_eof()
    assert e.value.received > 0


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=4))
def test_request_bytes_carry_exactly_the_headers_given_or_are_refused(
    headers: dict[str, str],
) -> None:
    """Whatever a header holds, it can never add a header or a request of its own."""
    req = HubRequest("GET", "http://hub:8081/hub/api/user", headers)
    ep, target = endpoint(req.url)
    try:
        wire = encode_request(req, ep, target)
    except ValueError:
        return
    head, sep, rest = wire.partition(b"\r\n\r\n")
    assert sep and rest == b""
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "GET /hub/api/user HTTP/1.1"
    assert lines[1] == "Host: hub:8081"
    assert lines[2:] == [f"{k}: {v}" for k, v in headers.items()]


@pytest.mark.parametrize(
    ("url", "where", "target"),
    [
        ("http://127.0.0.1:8081/hub/api/user", "127.0.0.1:8081", "/hub/api/user"),
        ("https://hub/hub/api/user?x=1", "hub:443", "/hub/api/user?x=1"),
        ("http://[::1]:81/a", "::1:81", "/a"),
        ("http://hub", "hub:80", "/"),
        (
            "http+unix://%2Frun%2Fhub.sock/hub/api/user",
            "unix socket /run/hub.sock",
            "/hub/api/user",
        ),
        ("unix+http://%2Frun%2Fhub.sock/x#frag", "unix socket /run/hub.sock", "/x"),
    ],
)
def test_endpoints(url: str, where: str, target: str) -> None:
    ep, got = endpoint(url)
    assert (str(ep), got) == (where, target)
    assert ep.tls is url.startswith("https")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hub/x",
        "hub/x",
        "http:///x",
        "http://u@hub/x",
        "http+unix://relative/x",
        "http://h/a b",
    ],
)
def test_urls_no_request_can_go_to(url: str) -> None:
    with pytest.raises(ValueError):
        endpoint(url)
