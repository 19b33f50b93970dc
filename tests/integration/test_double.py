"""The GitHub double itself: the other tests trust what it answers."""

import contextlib
import http.client as httpclient
import json
import secrets
import shutil
import socket
import tempfile
import time

from harness import Double, check


@contextlib.contextmanager
def double(*tokens):
    tmp = tempfile.mkdtemp(prefix="ghdouble-it.")
    d = None
    try:
        d = Double(tmp, tokens)
        yield d
    finally:
        if d is not None:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def get(conn, path, token=None, headers=None):
    h = {"User-Agent": "ephemerd-tests"}
    if token is not None:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    conn.request("GET", path, headers=h)
    r = conn.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def test_double_auth_and_headers():
    tok = secrets.token_hex(8)
    with double(tok) as d:
        with socket.create_connection(("127.0.0.1", d.port), 5) as s:
            s.sendall(b"GET /user HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: Bearer " + tok.encode() + b"\r\n\r\n")
            raw = b""
            while True:         # the double closes after this answer
                chunk = s.recv(65536)
                if not chunk:
                    break
                raw += chunk
        check(raw.startswith(b"HTTP/1.0 403"), "no User-Agent: %r" % raw[:40])
        check(b"text/html" in raw and b"User-Agent" in raw,
              "no User-Agent: body %r" % raw[-120:])

        conn = httpclient.HTTPConnection("127.0.0.1", d.port, timeout=5)
        st, h, body = get(conn, "/user")
        check(st == 401, "without a token: %d" % st)
        check(json.loads(body) == {
            "message": "Bad credentials",
            "documentation_url": "https://docs.github.com/rest"},
            "401 body: %r" % body)
        st, _, _ = get(conn, "/user", token="wrong" + tok)
        check(st == 401, "with a wrong token: %d" % st)
        st, h, body = get(conn, "/user",
                          headers={"Authorization": "token " + tok})
        check(st == 200, "`token T` form: %d" % st)
        for k in ("x-github-request-id", "x-github-media-type",
                  "x-ratelimit-limit", "x-ratelimit-remaining",
                  "x-ratelimit-used", "x-ratelimit-reset",
                  "x-ratelimit-resource", "etag", "content-length"):
            check(k in h, "header %s missing" % k)
        check(h["content-type"] == "application/json; charset=utf-8",
              "content-type %r" % h["content-type"])
        check(b'"login": "octocat"' in body, "login in %r" % body[:80])
        conn.close()


def test_double_budget_etag_keepalive():
    tok = secrets.token_hex(8)
    with double(tok) as d:
        conn = httpclient.HTTPConnection("127.0.0.1", d.port, timeout=5)
        st, h, _ = get(conn, "/user", token=tok)
        check(st == 200 and h["x-ratelimit-remaining"] == "4999" and
              h["x-ratelimit-used"] == "1",
              "first call: %d %s" % (st, h.get("x-ratelimit-remaining")))
        etag = h["etag"]
        check(etag.startswith('"') and etag.endswith('"') and len(etag) > 10,
              "etag %r" % etag)
        st, h, body = get(conn, "/user", token=tok,
                          headers={"If-None-Match": etag})
        check(st == 304 and body == b"", "conditional: %d %r" % (st, body))
        check(h["x-ratelimit-remaining"] == "4999", "a 304 was charged")
        st, h, body = get(conn, "/rate_limit", token=tok)
        check(st == 200 and b'"remaining": 4999' in body,
              "rate_limit: %d %r" % (st, body[:120]))
        st, h, body = get(conn, "/rate_limit", token=tok)
        check(h["x-ratelimit-remaining"] == "4999", "/rate_limit charged")
        st, h, body = get(conn, "/no/such/thing", token=tok)
        check(st == 404 and b'"status": "404"' in body, "404: %d" % st)
        check(d.remaining() == 4998, "budget %d, want 4998" % d.remaining())
        conn.close()
        reqs = d.requests()
        check(len(reqs) == 5, "%d requests logged, want 5" % len(reqs))
        check(all(r["headers"]["Authorization"] == "present" for r in reqs),
              "Authorization not redacted to present")
        check(tok not in repr(reqs), "the token is in /_double/requests")


def test_double_failures_delay_exhaustion():
    tok = secrets.token_hex(8)
    with double(tok) as d:
        d.control("POST", "fail", {"status": 500, "count": 2})
        conn = httpclient.HTTPConnection("127.0.0.1", d.port, timeout=10)
        got = [get(conn, "/user", token=tok)[0] for _ in range(3)]
        check(got == [500, 500, 200], "injected failures: %s" % got)
        d.control("POST", "delay", {"seconds": 1, "count": 1})
        t0 = time.monotonic()
        get(conn, "/user", token=tok)
        t1 = time.monotonic()
        get(conn, "/user", token=tok)
        t2 = time.monotonic()
        check(t1 - t0 >= 0.9 and t2 - t1 < 0.5,
              "delay: %.2fs then %.2fs" % (t1 - t0, t2 - t1))
        d.control("POST", "budget", {"remaining": 1})
        st, h, _ = get(conn, "/user", token=tok)
        check(st == 200 and h["x-ratelimit-remaining"] == "0",
              "last request: %d %s" % (st, h["x-ratelimit-remaining"]))
        st, h, body = get(conn, "/user", token=tok)
        check(st == 403 and h["x-ratelimit-remaining"] == "0" and
              b"rate limit exceeded" in body,
              "exhausted: %d %r" % (st, body[:100]))
        check(int(h["x-ratelimit-reset"]) > time.time(), "reset in the past")
        d.control("POST", "reset")
        check(d.requests() == [], "reset kept the request log")
        st, h, _ = get(conn, "/user", token=tok)
        check(st == 200 and h["x-ratelimit-remaining"] == "4999",
              "after reset: %d %s" % (st, h["x-ratelimit-remaining"]))
        conn.close()


def test_double_sigterm():
    tmp = tempfile.mkdtemp(prefix="ghdouble-it.")
    try:
        d = Double(tmp, ["t"])
        t0 = time.monotonic()
        rc = d.stop()
        check(rc == 0 and time.monotonic() - t0 < 5,
              "exit %s after %.1fs" % (rc, time.monotonic() - t0))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
