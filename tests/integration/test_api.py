"""The REST API's front door: authentication, rate limits, CORS, limits
on size, time and connections, request logging, metrics and docs."""

import json
import re
import socket
import time

from harness import Daemon, check, request, wait_for

TOKEN = "api-token-" + "5f1c0d7e9a2b4c6d"
TOKEN2 = "second-token-77"


def api_daemon(httpd_extra="", **kw):
    """A daemon with extra httpd settings (keys under httpd:)."""
    d = Daemon(start=False, **kw)
    try:
        listen = '  listen: "127.0.0.1:%d"\n' % d.port
        text = d.config_text().replace(listen, listen + httpd_extra)
        d.write(text=text)
        d.start()
    except BaseException:
        d.close()
        raise
    return d


def req(d, method, path, body=None, headers=None, raw=None, ctype=None):
    hdrs = dict(headers or {})
    if raw is not None:
        import http.client as hc
        conn = hc.HTTPConnection("127.0.0.1", d.port, timeout=10)
        try:
            if ctype:
                hdrs["Content-Type"] = ctype
            conn.request(method, path, body=raw, headers=hdrs)
            r = conn.getresponse()
            from harness import Reply
            return Reply(r.status, {k.lower(): v for k, v in
                                    r.getheaders()}, r.read())
        finally:
            conn.close()
    return request(method, d.port, path, body=body, headers=hdrs)


def envelope(r, status=None):
    """The JSON envelope of an answer, checked."""
    body = r.json()
    check(set(body) == {"status", "data", "message", "timestamp"},
          "not the envelope: %r" % body)
    if status is not None:
        check(body["status"] == status, "status %r: %r" % (status, body))
    check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", body["timestamp"]),
          "bad timestamp %r" % body["timestamp"])
    return body


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def test_auth_tokens():
    """Runner reads and all writes need a token; health and docs do not."""
    extra = "  api_tokens: [%s, %s]\n" % (TOKEN, TOKEN2)
    with api_daemon(extra) as d:
        for method, path in (("GET", "/api/v1/runners"),
                             ("GET", "/api/v1/runners/nope"),
                             ("DELETE", "/api/v1/runners/nope"),
                             ("GET", "/api/v1/runners/nope/logs"),
                             ("POST", "/api/v1/runners/cleanup"),
                             ("POST", "/api/v1/runners/cleanup-github"),
                             ("GET", "/api/v1/runners/github-status"),
                             ("POST", "/api/v1/runners")):
            r = req(d, method, path, body={} if method == "POST" else None)
            check(r.status == 401, "%s %s without token: %d" %
                  (method, path, r.status))
            check(r.headers.get("www-authenticate", "").startswith(
                "Bearer"), "no WWW-Authenticate on %s" % path)
            envelope(r, "error")
            r = req(d, method, path, headers=bearer("wrong" + TOKEN),
                    body={} if method == "POST" else None)
            check(r.status == 401, "%s %s wrong token: %d" %
                  (method, path, r.status))
        r = req(d, "GET", "/api/v1/runners", headers=bearer(TOKEN))
        check(r.status == 200, "good token: %d" % r.status)
        r = req(d, "GET", "/api/v1/runners", headers=bearer(TOKEN2))
        check(r.status == 200, "second token: %d" % r.status)
        r = req(d, "GET", "/api/v1/runners/nope", headers=bearer(TOKEN))
        check(r.status == 404, "unknown runner with token: %d" % r.status)
        for path in ("/health", "/healthz", "/api/v1/health", "/metrics",
                     "/openapi.json", "/docs", "/redoc"):
            r = req(d, "GET", path)
            check(r.status in (200, 503), "%s without token: %d" %
                  (path, r.status))
        log = d.log()
        check(TOKEN not in log and TOKEN2 not in log,
              "an API token reached the log")
        check("WARNING" not in log or "no API tokens" not in log,
              "warned about missing tokens although tokens are set")


def test_auth_tokens_file():
    """api_tokens_file: one token a line."""
    d = Daemon(start=False)
    try:
        path = d.tmp + "/api-tokens"
        with open(path, "w") as f:
            f.write(TOKEN + "\n")
        import os
        os.chmod(path, 0o600)
        listen = '  listen: "127.0.0.1:%d"\n' % d.port
        d.write(text=d.config_text().replace(
            listen, listen + "  api_tokens_file: %s\n" % path))
        d.start()
        check(req(d, "GET", "/api/v1/runners").status == 401,
              "no token accepted")
        check(req(d, "GET", "/api/v1/runners",
                  headers=bearer(TOKEN)).status == 200,
              "token from the file refused")
    finally:
        d.close()


def test_no_token_warning():
    """Without tokens, a warning at start when not on loopback only."""
    with api_daemon() as d:
        time.sleep(0.3)
        check("no API tokens" not in d.log(), "warned on loopback")
        r = req(d, "GET", "/api/v1/runners")
        check(r.status == 200, "no tokens: open API: %d" % r.status)
    d = Daemon(start=False)
    try:
        d.write(text=d.config_text().replace(
            '"127.0.0.1:%d"' % d.port, '"0.0.0.0:%d"' % d.port))
        d.start()
        d.wait_log(r"^WARNING httpd: no API tokens are configured", 5)
    finally:
        d.close()


def test_rate_limit():
    """Token bucket per client: burst, then 429 with Retry-After."""
    with api_daemon("  rate_limit: {rate: 1, burst: 5}\n") as d:
        codes = [req(d, "GET", "/api/v1/runners").status for _ in range(8)]
        check(codes[:5] == [200] * 5, "burst not served: %r" % codes)
        check(codes[5:] == [429] * 3, "over the limit: %r" % codes)
        r = req(d, "GET", "/api/v1/runners")
        check(r.status == 429, "still limited: %d" % r.status)
        check(r.headers.get("retry-after") == "1", "Retry-After: %r" %
              r.headers.get("retry-after"))
        envelope(r, "error")
        # Health checks are exempt.
        for _ in range(10):
            check(req(d, "GET", "/healthz").status == 200,
                  "healthz limited")
        # A forged X-Forwarded-For from an untrusted peer changes nothing.
        r = req(d, "GET", "/api/v1/runners",
                headers={"X-Forwarded-For": "203.0.113.5"})
        check(r.status == 429, "forged X-Forwarded-For got a new bucket")
        time.sleep(1.1)
        check(req(d, "GET", "/api/v1/runners").status == 200,
              "bucket not refilled after a second")
        wait_for(lambda: "429" in d.log(), 3, "a RESPONSE line with 429")


def test_trusted_proxy_buckets():
    """Behind a trusted proxy, each X-Forwarded-For client has a bucket."""
    extra = ("  rate_limit: {rate: 1, burst: 3}\n"
             "  trusted_proxies: [127.0.0.0/8]\n")
    with api_daemon(extra) as d:
        a = {"X-Forwarded-For": "198.51.100.1"}
        b = {"X-Forwarded-For": "6.6.6.6, 198.51.100.2"}
        codes_a = [req(d, "GET", "/api/v1/runners", headers=a).status
                   for _ in range(4)]
        codes_b = [req(d, "GET", "/api/v1/runners", headers=b).status
                   for _ in range(4)]
        check(codes_a == [200, 200, 200, 429], "client a: %r" % codes_a)
        check(codes_b == [200, 200, 200, 429], "client b: %r" % codes_b)
        d.wait_log(r"REQUEST httpd: GET /api/v1/runners from 198\.51\.100\.2",
                   3)


def test_cors():
    extra = '  cors_origins: ["https://ui.example", "http://b.example:81"]\n'
    with api_daemon(extra) as d:
        r = req(d, "GET", "/api/v1/runners",
                headers={"Origin": "https://ui.example"})
        check(r.headers.get("access-control-allow-origin") ==
              "https://ui.example", "origin not echoed: %r" % r.headers)
        check("Origin" in r.headers.get("vary", ""), "no Vary: Origin")
        r = req(d, "GET", "/api/v1/runners",
                headers={"Origin": "https://evil.example"})
        check(not any(k.startswith("access-control") for k in r.headers),
              "disallowed origin got CORS headers: %r" % r.headers)
        r = req(d, "OPTIONS", "/api/v1/runners", headers={
            "Origin": "http://b.example:81",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type"})
        check(r.status == 204, "preflight: %d" % r.status)
        check("POST" in r.headers.get("access-control-allow-methods", ""),
              "preflight methods: %r" % r.headers)
        allow = r.headers.get("access-control-allow-headers", "").lower()
        check("authorization" in allow and "content-type" in allow,
              "preflight headers: %r" % allow)
        check(r.headers.get("access-control-max-age"), "no Max-Age")
        r = req(d, "OPTIONS", "/api/v1/runners", headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST"})
        check(not any(k.startswith("access-control") for k in r.headers),
              "disallowed preflight got CORS headers")
    with api_daemon() as d:
        r = req(d, "GET", "/health", headers={"Origin": "https://x.example"})
        check(r.headers.get("access-control-allow-origin") == "*",
              "default * not applied: %r" % r.headers)


def test_errors_envelope():
    """404, 405, 413, 415 and validation errors all use the envelope."""
    with api_daemon() as d:
        r = req(d, "GET", "/nope")
        check(r.status == 404, "404: %d" % r.status)
        envelope(r, "error")
        r = req(d, "PUT", "/api/v1/runners")
        check(r.status == 405, "405: %d" % r.status)
        check(r.headers.get("allow") == "GET, HEAD, POST", "Allow: %r" %
              r.headers.get("allow"))
        envelope(r, "error")
        r = req(d, "GET", "/api/v1/runners/cleanup")
        check(r.status == 405, "GET cleanup: %d" % r.status)
        r = req(d, "POST", "/api/v1/runners", raw=b"x" * (70 * 1024),
                ctype="application/json")
        check(r.status == 413, "70 KiB body: %d" % r.status)
        envelope(r, "error")
        r = req(d, "POST", "/api/v1/runners", raw=b"{}", ctype="text/plain")
        check(r.status == 415, "text/plain: %d" % r.status)
        envelope(r, "error")
        for body, word in (({"scope": "repo", "scope_name": "a/b",
                             "colour": 1}, "colour"),
                           ({"scope": "team", "scope_name": "a"}, "scope"),
                           ({"scope": "repo", "scope_name": "a/b",
                             "count": "2"}, "count"),
                           ({"scope": "repo", "scope_name": "a/b",
                             "count": 0}, "count"),
                           ({"scope": "repo", "scope_name": "no slash"},
                            "scope_name"),
                           ({"scope": "repo", "scope_name": "a/b",
                             "labels": "x"}, "labels")):
            r = req(d, "POST", "/api/v1/runners", body=body)
            check(r.status == 400, "%r: %d" % (body, r.status))
            check(word in envelope(r, "error")["message"],
                  "message does not name %s: %r" % (word, r.body))
        r = req(d, "GET", "/api/v1/runners/" + "a" * 80)
        check(r.status in (400, 404), "long id: %d" % r.status)
        r = req(d, "GET", "/api/v1/runners/%22%3Cx%3E%0A")
        check(r.status == 400, "bad id: %d" % r.status)
        envelope(r, "error")        # JSON-escaped whatever the id holds
        r = req(d, "POST", "/api/v1/runners/cleanup-github?dry_run=maybe")
        check(r.status == 400, "bad dry_run: %d" % r.status)
        r = req(d, "GET", "/api/v1/runners/github-status")
        check(r.status == 200 and envelope(r)["data"] == [],
              "github-status: %d" % r.status)


def test_slow_client_cut():
    """A request that does not arrive in time is cut; others go on."""
    with api_daemon() as d:
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(b"GET /api/v1/runners HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        s.settimeout(25)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        took = time.monotonic() - t0
        s.close()
        check(12 <= took <= 20, "slow request cut after %.1fs" % took)
        check(req(d, "GET", "/health").status == 200, "httpd stuck")


def test_connection_cap():
    """Past the cap, a new connection is answered 503 and closed."""
    with api_daemon() as d:
        socks = []
        try:
            for _ in range(512):
                socks.append(socket.create_connection(("127.0.0.1",
                                                       d.port)))
            time.sleep(0.3)
            r = req(d, "GET", "/api/v1/runners")
            check(r.status == 503, "connection 513: %d" % r.status)
            envelope(r, "error")
        finally:
            for s in socks:
                s.close()
        wait_for(lambda: req(d, "GET", "/api/v1/runners").status == 200,
                 5, "connections freed")


def test_request_logging():
    with api_daemon() as d:
        start = len(d.log_lines())
        req(d, "GET", "/api/v1/runners?token=sekrit-query")
        for path in ("/health", "/healthz", "/api/v1/health"):
            req(d, "GET", path)
        d.wait_log(r"^REQUEST httpd: GET /api/v1/runners from 127\.0\.0\.1$",
                   3, start)
        d.wait_log(r"^RESPONSE httpd: 200 GET /api/v1/runners 127\.0\.0\.1 "
                   r"\d+ ms$", 3, start)
        time.sleep(0.3)
        lines = d.log_lines()[start:]
        check(not any("health" in l and ("REQUEST" in l or "RESPONSE" in l)
                      for l in lines), "health checks logged")
        check(not any("sekrit" in l for l in lines), "query string logged")


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def test_metrics():
    with api_daemon() as d:
        req(d, "GET", "/api/v1/runners")
        req(d, "GET", "/api/v1/runners/no-such")
        req(d, "GET", "/nowhere")
        r = req(d, "GET", "/metrics")
        check(r.status == 200, "metrics: %d" % r.status)
        check(r.headers["content-type"].startswith(
            "text/plain; version=0.0.4"), r.headers["content-type"])
        text = r.body.decode()
        m = parse_metrics(text)
        for fam in ("ephemerd_runners", "ephemerd_runners_created_total",
                    "ephemerd_runners_destroyed_total",
                    "ephemerd_container_exits_total",
                    "ephemerd_github_requests_total",
                    "ephemerd_github_rate_limit_remaining",
                    "ephemerd_webhook_deliveries_total",
                    "ephemerd_http_requests_total",
                    "ephemerd_child_restarts_total"):
            check("# TYPE %s " % fam in text, "no family " + fam)
        check(m.get('ephemerd_http_requests_total{route="/api/v1/runners",'
                    'code="200"}') == 1, "runners count: %r" % m)
        check(m.get('ephemerd_http_requests_total{route='
                    '"/api/v1/runners/{id}",code="404"}') == 1,
              "template not used for /api/v1/runners/{id}")
        check(m.get('ephemerd_http_requests_total{route="unmatched",'
                    'code="404"}') == 1, "unmatched 404")
        check(not any("no-such" in k for k in m), "raw path in metrics")
        check(m.get('ephemerd_runners{pool="default",state="idle"}') == 0,
              "runners by pool and state missing")
        check(m.get('ephemerd_child_restarts_total{process="poller"}') == 0,
              "restart counters from the supervisor missing")
        check(m.get('ephemerd_webhook_deliveries_total{result="accepted"}')
              == 0, "webhook deliveries")
        check(m.get('ephemerd_process_up{process="docker"}') == 1,
              "docker worker did not answer")
        # A killed child is restarted and counted.
        roles = d.wait_roles()
        import os
        import signal
        os.kill(roles["poller"], signal.SIGKILL)
        wait_for(lambda: parse_metrics(req(d, "GET", "/metrics").body
                                       .decode()).get(
            'ephemerd_child_restarts_total{process="poller"}') == 1,
            10, "poller restart counted")


def test_docs_served():
    with api_daemon() as d:
        r = req(d, "GET", "/openapi.json")
        spec = r.json()
        check(spec["openapi"].startswith("3."), "not OpenAPI 3")
        # Every documented operation is served (not 404/405).
        for path, ops in spec["paths"].items():
            for method in ops:
                p = path.replace("{id}", "no-such-runner")
                r = req(d, method.upper(), p,
                        body={} if method == "post" else None)
                check(r.status not in (404, 405) or
                      "no such runner" in r.body.decode(),
                      "%s %s: %d" % (method, path, r.status))
        for path in ("/docs", "/redoc"):
            r = req(d, "GET", path)
            check(r.status == 200 and b"<html" in r.body, path)
            check(b"http://" not in r.body and b"https://" not in r.body,
                  "%s refers to another site" % path)
            for asset in re.findall(rb'(?:src|href)="([^"]+)"', r.body):
                a = req(d, "GET", "/" + asset.decode())
                check(a.status == 200 and len(a.body) > 1000,
                      "asset %s: %d" % (asset, a.status))
