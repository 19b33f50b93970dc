"""The GitHub double itself: the other tests trust what it answers."""

import base64
import contextlib
import http.client as httpclient
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

from harness import SRCDIR, Double, check, request


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


# ---- self-hosted runners ----------------------------------------------

def api(conn, method, path, token, body=None, headers=None):
    h = {"User-Agent": "ephemerd-tests", "Authorization": "Bearer " + token}
    h.update(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    raw = r.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw
    return r.status, {k.lower(): v for k, v in r.getheaders()}, parsed


def runner_call(d, action, body, status=200):
    r = request("POST", d.port, "/_double/runner/" + action, body=body)
    check(r.status == status, "runner %s: %d %r, want %d" %
          (action, r.status, r.body[:200], status))
    return r.json()


def jit(conn, tok, scope_path, name, labels, group=1):
    return api(conn, "POST", scope_path +
               "/actions/runners/generate-jitconfig", tok,
               {"name": name, "runner_group_id": group, "labels": labels,
                "work_folder": "_work"})


def test_double_jit_flow_and_conflicts():
    tok = secrets.token_hex(8)
    with double(tok) as d:
        conn = httpclient.HTTPConnection("127.0.0.1", d.port, timeout=5)
        st, _, body = jit(conn, tok, "/repos/o/r", "r1",
                          ["self-hosted", "gpu"])
        check(st == 201, "generate-jitconfig: %d %r" % (st, body))
        check(set(body) == {"runner", "encoded_jit_config"},
              "keys %s" % sorted(body))
        runner = body["runner"]
        check(runner["status"] == "offline" and runner["busy"] is False and
              runner["os"] == "unknown", "new runner %r" % runner)
        check([lab["name"] for lab in runner["labels"]] ==
              ["self-hosted", "gpu"] and
              runner["labels"][0]["type"] == "read-only" and
              runner["labels"][1]["type"] == "custom",
              "labels %r" % runner["labels"])
        encoded = body["encoded_jit_config"]
        config = json.loads(base64.b64decode(encoded))
        check(config["runner_id"] == runner["id"] and config["name"] == "r1",
              "JIT config %r" % config)

        st, _, err = jit(conn, tok, "/repos/o/r", "R1", ["self-hosted"])
        check(st == 409 and err["message"] == "Already exists - A runner "
              "with the name R1 already exists.", "dup: %d %r" % (st, err))
        st, _, _ = jit(conn, tok, "/repos/o/other", "r1", ["self-hosted"])
        check(st == 201, "the same name in another repo: %d" % st)
        st, _, err = jit(conn, tok, "/repos/o/r", "r2", [])
        check(st == 422, "no labels: %d" % st)
        st, _, err = api(conn, "POST", "/repos/o/r/actions/runners/"
                         "generate-jitconfig", tok,
                         {"name": "r3", "labels": ["x"]})
        check(st == 422 and "runner_group_id" in err["message"],
              "no group: %d %r" % (st, err))
        st, _, err = jit(conn, tok, "/orgs/octo", "g1", ["self-hosted"], 7)
        check(st == 404, "unknown group: %d %r" % (st, err))
        group = d.control("POST", "runner-groups",
                          {"org": "octo", "name": "big"})
        st, _, groups = api(conn, "GET", "/orgs/octo/actions/runner-groups",
                            tok)
        check(st == 200 and [g["name"] for g in groups["runner_groups"]] ==
              ["Default", "big"] and groups["runner_groups"][0]["id"] == 1,
              "groups %r" % groups)
        st, _, body = jit(conn, tok, "/orgs/octo", "g1", ["self-hosted"],
                          group["id"])
        check(st == 201 and body["runner"]["runner_group_id"] == group["id"],
              "known group: %d" % st)

        # The runner registers with its JIT config and comes online.
        st, _, one = api(conn, "GET", "/repos/o/r/actions/runners/%d" %
                         runner["id"], tok)
        check(st == 200 and one["status"] == "offline", "GET one %r" % one)
        reg = runner_call(d, "register", {"jit_config": encoded})
        check(reg["runner_id"] == runner["id"], "register %r" % reg)
        runner_call(d, "register", {"jit_config": encoded}, status=409)
        forged = dict(config, secret="0" * 32)
        runner_call(d, "register", {"jit_config": base64.b64encode(
            json.dumps(forged).encode()).decode()}, status=401)
        st, _, one = api(conn, "GET", "/repos/o/r/actions/runners/%d" %
                         runner["id"], tok)
        check(one["status"] == "online" and one["os"] == "Linux",
              "after register %r" % one)

        st, _, _ = api(conn, "DELETE", "/repos/o/r/actions/runners/%d" %
                       runner["id"], tok)
        check(st == 204, "DELETE: %d" % st)
        st, _, _ = api(conn, "DELETE", "/repos/o/r/actions/runners/%d" %
                       runner["id"], tok)
        check(st == 404, "DELETE again: %d" % st)
        st, _, _ = api(conn, "GET", "/repos/o/r/actions/runners/%d" %
                       runner["id"], tok)
        check(st == 404, "GET after DELETE: %d" % st)
        st, _, _ = api(conn, "GET", "/repos/o/r/actions/runners/1", "nope")
        check(st == 401, "without a valid token: %d" % st)
        conn.close()


def test_double_token_flow_and_pagination():
    tok = secrets.token_hex(8)
    with double(tok) as d:
        conn = httpclient.HTTPConnection("127.0.0.1", d.port, timeout=5)
        st, _, body = api(conn, "POST", "/orgs/octo/actions/runners/"
                          "registration-token", tok)
        check(st == 201 and set(body) == {"token", "expires_at"},
              "registration-token: %d %r" % (st, body))
        expires = time.mktime(time.strptime(body["expires_at"][:19],
                                            "%Y-%m-%dT%H:%M:%S")) - \
            time.timezone
        check(3500 < expires - time.time() < 3700,
              "expires_at %s is not an hour ahead" % body["expires_at"])
        st, _, rm = api(conn, "POST", "/orgs/octo/actions/runners/"
                        "remove-token", tok)
        check(st == 201 and rm["token"] != body["token"], "remove-token")

        runner_call(d, "register", {"token": "bogus", "name": "x",
                                    "labels": "self-hosted"}, status=401)
        runner_call(d, "register", {"token": rm["token"], "name": "x",
                                    "labels": "self-hosted"}, status=401)
        for i in range(7):
            reg = runner_call(d, "register", {
                "token": body["token"], "name": "t%d" % i,
                "labels": "self-hosted,linux"})
        check(reg["scope"] == "org" and reg["scope_name"] == "octo",
              "token runner %r" % reg)
        runner_call(d, "register", {"token": body["token"], "name": "T0",
                                    "labels": "linux"}, status=409)
        entries = d.control("GET", "runners")
        check(len(entries) == 7 and
              all(e["registered_by"] == "token" and e["online"]
                  for e in entries), "entries %r" % entries)
        check("secret" not in repr(entries) and
              body["token"] not in repr(entries), "secrets in /runners")

        names, path, pages = [], "/orgs/octo/actions/runners?per_page=3", 0
        while path is not None:
            st, h, page = api(conn, "GET", path, tok)
            check(st == 200 and page["total_count"] == 7,
                  "page %s: %d %r" % (path, st, page))
            names += [r["name"] for r in page["runners"]]
            pages += 1
            nxt = [p for p in h.get("link", "").split(", ")
                   if p.endswith('rel="next"')]
            path = nxt[0][nxt[0].index("/orgs"):nxt[0].index(">")] \
                if nxt else None
        check(pages == 3 and names == ["t%d" % i for i in range(7)],
              "pages %d names %s" % (pages, names))
        st, h, _ = api(conn, "GET", "/orgs/octo/actions/runners?per_page=3",
                       tok)
        st, h2, body = api(conn, "GET", "/orgs/octo/actions/runners"
                           "?per_page=3", tok,
                           headers={"If-None-Match": h["etag"]})
        check(st == 304 and body is None, "conditional list: %d" % st)
        conn.close()


def test_double_broker_labels_and_ephemeral_removal():
    tok = secrets.token_hex(8)
    with double(tok) as d:
        conn = httpclient.HTTPConnection("127.0.0.1", d.port, timeout=5)
        st, _, body = api(conn, "POST", "/repos/o/r/actions/runners/"
                          "registration-token", tok)
        plain = runner_call(d, "register", {"token": body["token"],
                                            "name": "plain",
                                            "labels": "self-hosted"})
        gpu = runner_call(d, "register", {"token": body["token"],
                                          "name": "gpu",
                                          "labels": "self-hosted,GPU"})
        job = d.control("POST", "jobs", {"repo": "o/r",
                                         "labels": ["self-hosted", "gpu"],
                                         "duration": 0})
        other = d.control("POST", "jobs", {"repo": "o/elsewhere",
                                           "labels": ["self-hosted"]})

        def poll(reg):
            return runner_call(d, "poll", {"runner_id": reg["runner_id"],
                                           "session": reg["session"]})
        check(poll(plain)["job_id"] is None,
              "a runner without gpu was given the gpu job")
        got = poll(gpu)
        check(got["job_id"] == job["id"], "gpu runner got %r" % got)
        jobs = d.control("GET", "jobs")
        check(jobs[0]["status"] == "in_progress" and
              jobs[0]["runner_name"] == "gpu" and
              jobs[1]["status"] == "queued", "jobs %r" % jobs)
        st, _, one = api(conn, "GET", "/repos/o/r/actions/runners/%d" %
                         gpu["runner_id"], tok)
        check(one["busy"] is True, "busy runner %r" % one)
        st, _, err = api(conn, "DELETE", "/repos/o/r/actions/runners/%d" %
                         gpu["runner_id"], tok)
        check(st == 422 and "still running a job" in err["message"],
              "DELETE of a busy runner: %d" % st)
        check(poll(plain)["job_id"] is None,
              "a repo runner took another repo's job")

        runner_call(d, "complete", {"runner_id": gpu["runner_id"],
                                    "session": "x", "job_id": job["id"]},
                    status=401)
        runner_call(d, "complete", {"runner_id": gpu["runner_id"],
                                    "session": gpu["session"],
                                    "job_id": job["id"]})
        jobs = d.control("GET", "jobs")
        check(jobs[0]["status"] == "completed" and
              jobs[0]["conclusion"] == "success", "jobs %r" % jobs[0])
        names = [r["name"] for r in d.control("GET", "runners")]
        check(names == ["plain"], "the ephemeral runner stayed: %s" % names)
        runner_call(d, "poll", {"runner_id": gpu["runner_id"],
                                "session": gpu["session"]}, status=404)
        check(other["status"] == "queued", "other job %r" % other)
        conn.close()


def test_double_runner_image_takes_a_job():
    """The test runner image, run by hand with a JIT config."""
    tag = "ephemerd-test-runner:latest"
    p = subprocess.run([os.path.join(SRCDIR, "tests", "runner-image",
                                     "build.sh"), tag],
                       capture_output=True, timeout=120)
    check(p.returncode == 0, "build.sh: %r" % p.stderr[-300:])
    t0 = time.monotonic()
    p = subprocess.run([os.path.join(SRCDIR, "tests", "runner-image",
                                     "build.sh"), tag],
                       capture_output=True, timeout=120)
    check(p.returncode == 0 and b"up to date" in p.stdout and
          time.monotonic() - t0 < 5, "second build.sh: %r" % p.stdout)

    tok = secrets.token_hex(8)
    with double(tok) as d:
        conn = httpclient.HTTPConnection("127.0.0.1", d.port, timeout=5)
        st, _, body = jit(conn, tok, "/repos/o/r", "img1",
                          ["self-hosted", "linux"])
        check(st == 201, "generate-jitconfig: %d" % st)
        job = d.control("POST", "jobs", {"repo": "o/r", "labels": ["linux"],
                                         "duration": 1})
        name = "ephemerd-double-test-%s" % secrets.token_hex(4)
        try:
            p = subprocess.run(
                ["docker", "run", "--name", name, "--network", "host",
                 "-e", "EPHEMERD_JIT_CONFIG=" + body["encoded_jit_config"],
                 "-e", "DOUBLE_URL=" + d.url, tag],
                capture_output=True, timeout=60)
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        out = p.stdout.decode(errors="replace")
        check(p.returncode == 0, "runner exit %d: %s %r" %
              (p.returncode, out, p.stderr[-300:]))
        check("Running job: %d" % job["id"] in out and
              "completed with result: Succeeded" in out, "output %r" % out)
        jobs = d.control("GET", "jobs")
        check(jobs[0]["status"] == "completed" and
              jobs[0]["runner_name"] == "img1", "jobs %r" % jobs)
        check(d.control("GET", "runners") == [], "runner entry stayed")

        # A bad token is a clear failure, not a hang.
        p = subprocess.run(
            ["docker", "run", "--rm", "--network", "host",
             "-e", "RUNNER_TOKEN=bogus", "-e", "RUNNER_NAME=x",
             "-e", "DOUBLE_URL=" + d.url, tag],
            capture_output=True, timeout=60)
        check(p.returncode == 1 and b"registration failed" in p.stderr,
              "bad token: exit %d %r" % (p.returncode, p.stderr[-200:]))
        conn.close()
