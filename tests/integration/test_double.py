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


# ---- the world of automatic mode ----------------------------------------

CI = """name: CI
on: push
jobs:
  build:
    runs-on: [self-hosted, linux]
    steps:
      - run: make
"""


def links(h):
    """{rel: path and query} of a Link header."""
    out = {}
    for part in h.get("link", "").split(", "):
        if part:
            url, rel = part.split("; ")
            out[rel[5:-1]] = url[url.index("/", 8):-1]
    return out


def charged(d, since=0):
    return [r for r in d.requests()[since:] if r["charged"]]


def test_double_world_repository_lists():
    tok = secrets.token_hex(8)
    with double(tok) as d:
        for i in range(33):
            d.control("POST", "repos", {"full_name": "octocat/r%02d" % i,
                                        "private": i % 2 == 1})
        d.control("POST", "repos", {"full_name": "hubot/shared",
                                    "collaborator": True})
        d.control("POST", "repos", {"full_name": "hubot/secret"})
        for name in ("b-svc", "a-svc", "old"):
            d.control("POST", "repos", {"full_name": "octo-org/" + name,
                                        "owner_type": "Organization",
                                        "archived": name == "old"})
        r = request("POST", d.port, "/_double/repos",
                    body={"full_name": "octocat/x",
                          "owner_type": "Organization"})
        check(r.status == 422, "the user as an org: %d" % r.status)
        r = request("POST", d.port, "/_double/repos",
                    body={"full_name": "no slash"})
        check(r.status == 400, "a bad full_name: %d" % r.status)

        conn = httpclient.HTTPConnection("127.0.0.1", d.port, timeout=5)
        st, h, page1 = api(conn, "GET", "/user/repos", tok)
        check(st == 200 and len(page1) == 30, "page 1: %d %d" %
              (st, len(page1)))
        rel = links(h)
        check(set(rel) == {"next", "last"} and
              "page=2" in rel["next"] and "per_page=30" in rel["next"],
              "page 1 links %r" % rel)
        st, h, page2 = api(conn, "GET", rel["next"], tok)
        check(set(links(h)) == {"prev", "first"},
              "last page links %r" % links(h))
        names = [x["full_name"] for x in page1 + page2]
        check(len(names) == 37 and names == sorted(names, key=str.lower),
              "all by full_name: %s" % names)
        check("hubot/secret" not in names and "hubot/shared" in names and
              "octo-org/old" in names, "reach: %s" % names)
        one = [x for x in page1 if x["full_name"] == "octocat/r00"][0]
        for key in ("id", "name", "full_name", "owner", "private",
                    "archived", "disabled", "default_branch",
                    "permissions", "visibility", "pushed_at"):
            check(key in one, "repository without %s" % key)
        check(one["owner"]["login"] == "octocat" and
              one["owner"]["type"] == "User" and
              one["url"].endswith("/repos/" + one["full_name"]),
              "repository %r" % {k: one[k] for k in ("owner", "url")})
        old = [x for x in page1 + page2
               if x["full_name"] == "octo-org/old"][0]
        check(old["archived"] is True and
              old["owner"]["type"] == "Organization", "archived %r" % old)

        st, h, big = api(conn, "GET", "/user/repos?per_page=500", tok)
        check(len(big) == 37 and "link" not in h, "per_page clamp")
        st, _, own = api(conn, "GET", "/user/repos?affiliation=owner&"
                         "visibility=private&per_page=100", tok)
        check(len(own) == 16 and all(x["private"] for x in own),
              "private owned: %d" % len(own))
        st, _, col = api(conn, "GET", "/user/repos?affiliation="
                         "collaborator", tok)
        check([x["full_name"] for x in col] == ["hubot/shared"],
              "collaborator: %r" % [x["full_name"] for x in col])
        st, _, err = api(conn, "GET", "/user/repos?type=owner&"
                         "visibility=all", tok)
        check(st == 422, "type with visibility: %d" % st)

        st, _, org = api(conn, "GET", "/orgs/octo-org/repos", tok)
        check([x["full_name"] for x in org] ==
              ["octo-org/old", "octo-org/a-svc", "octo-org/b-svc"],
              "org repos, newest first: %r" % [x["full_name"] for x in org])
        st, _, org = api(conn, "GET", "/orgs/octo-org/repos?sort=full_name",
                         tok)
        check([x["name"] for x in org] == ["a-svc", "b-svc", "old"],
              "org repos by name: %r" % [x["name"] for x in org])
        st, _, _ = api(conn, "GET", "/orgs/nobody/repos", tok)
        check(st == 404, "unknown org: %d" % st)
        st, _, _ = api(conn, "GET", "/orgs/octocat/repos", tok)
        check(st == 404, "a user as an org: %d" % st)
        conn.close()


def git_blob_sha(content):
    """The blob id as git itself computes it, when git is installed."""
    if shutil.which("git") is None:
        return None
    p = subprocess.run(["git", "hash-object", "--stdin"], input=content,
                       capture_output=True, check=True)
    return p.stdout.decode().strip()


def test_double_contents_etags_and_charging():
    tok = secrets.token_hex(8)
    with double(tok) as d:
        long_yaml = CI + "".join("# comment line %d\n" % i
                                 for i in range(20))
        d.control("POST", "repos", {"full_name": "octocat/app",
                                    "workflows": {"ci.yml": long_yaml,
                                                  "a.yaml": CI}})
        d.control("POST", "repos", {"full_name": "octocat/empty"})
        conn = httpclient.HTTPConnection("127.0.0.1", d.port, timeout=5)
        st, h, listing = api(conn, "GET", "/repos/octocat/app/contents/"
                             ".github/workflows", tok)
        check(st == 200 and [x["name"] for x in listing] ==
              ["a.yaml", "ci.yml"], "listing %r" % listing)
        entry = listing[1]
        check(entry["type"] == "file" and
              entry["path"] == ".github/workflows/ci.yml" and
              entry["size"] == len(long_yaml) and
              set(entry["_links"]) == {"self", "git", "html"} and
              entry["download_url"].endswith("/main/.github/workflows/"
                                             "ci.yml"), "entry %r" % entry)
        want = git_blob_sha(long_yaml.encode())
        check(want is None or entry["sha"] == want,
              "sha %s, git says %s" % (entry["sha"], want))
        etag = h["etag"]

        st, h, f = api(conn, "GET", "/repos/octocat/app/contents/"
                       ".github/workflows/ci.yml", tok)
        check(st == 200 and f["encoding"] == "base64" and
              f["sha"] == entry["sha"], "file %r" % f)
        lines = f["content"].split("\n")
        check(lines[-1] == "" and all(len(x) == 60 for x in lines[:-2]) and
              0 < len(lines[-2]) <= 60, "base64 lines %r" % lines[:3])
        check(base64.b64decode(f["content"]).decode() == long_yaml,
              "content does not decode to the file")
        conn.request("GET", "/repos/octocat/app/contents/.github/"
                     "workflows/a.yaml", headers={
                         "User-Agent": "t", "Authorization": "Bearer " + tok,
                         "Accept": "application/vnd.github.raw+json"})
        r = conn.getresponse()
        raw = r.read()
        want = git_blob_sha(CI.encode()) or listing[0]["sha"]
        check(r.status == 200 and raw == CI.encode() and
              r.getheader("ETag") == '"%s"' % want, "raw: %d %r %s" %
              (r.status, raw[:40], r.getheader("ETag")))

        st, _, err = api(conn, "GET", "/repos/octocat/empty/contents/"
                         ".github/workflows", tok)
        check(st == 404 and err["message"] == "Not Found" and
              err["status"] == "404" and "contents" in
              err["documentation_url"], "no workflows: %d %r" % (st, err))
        st, _, _ = api(conn, "GET", "/repos/octocat/app/contents/.github/"
                       "workflows/none.yml", tok)
        check(st == 404, "a missing file: %d" % st)

        # Unchanged data: the same bytes, a 304 that costs nothing.
        d.control("POST", "requests/clear")
        check(d.requests() == [], "requests/clear kept records")
        before = d.remaining()
        for _ in range(3):
            st, h2, _ = api(conn, "GET", "/repos/octocat/app/contents/"
                            ".github/workflows", tok,
                            headers={"If-None-Match": etag})
            check(st == 304, "conditional listing: %d" % st)
        st, h3, _ = api(conn, "GET", "/repos/octocat/app/contents/"
                        ".github/workflows", tok)
        check(h3["etag"] == etag, "the listing changed by itself")
        reqs = d.requests()
        check([(r["status"], r["charged"]) for r in reqs] ==
              [(304, False)] * 3 + [(200, True)] and
              all(r["method"] == "GET" and "/contents/" in r["path"]
                  for r in reqs), "records %r" % reqs)
        check(d.remaining() == before - 1, "charged %d, want 1" %
              (before - d.remaining()))

        # A changed file: new sha, new ETag, a 200 again.
        d.control("POST", "workflow", {"repo": "octocat/app",
                                       "name": "ci.yml", "content": CI})
        st, h4, listing2 = api(conn, "GET", "/repos/octocat/app/contents/"
                               ".github/workflows", tok,
                               headers={"If-None-Match": etag})
        check(st == 200 and h4["etag"] != etag and
              listing2[1]["sha"] != entry["sha"] and
              listing2[1]["sha"] == listing2[0]["sha"],
              "after a change: %d" % st)
        conn.close()


def test_double_runs_jobs_and_broker():
    tok = secrets.token_hex(8)
    with double(tok) as d:
        d.control("POST", "repos", {"full_name": "octo-org/svc",
                                    "owner_type": "Organization",
                                    "workflows": {"ci.yml": CI}})
        r = request("POST", d.port, "/_double/jobs",
                    body={"repo": "octo-org/nope", "labels": ["x"]})
        check(r.status == 404, "a job on an unknown repo: %d" % r.status)
        j1 = d.control("POST", "jobs", {"repo": "octo-org/svc",
                                        "labels": ["self-hosted", "linux"],
                                        "duration": 0})
        j2 = d.control("POST", "jobs", {"repo": "octo-org/svc",
                                        "run_id": j1["run_id"],
                                        "labels": ["self-hosted"],
                                        "name": "test"})
        check(j1["run_id"] == j2["run_id"] and j1["id"] > 2 ** 32,
              "jobs %r %r" % (j1, j2))
        r = request("POST", d.port, "/_double/jobs",
                    body={"repo": "octo-org/svc", "run_id": 12})
        check(r.status == 404, "an unknown run: %d" % r.status)

        conn = httpclient.HTTPConnection("127.0.0.1", d.port, timeout=5)
        path = "/repos/octo-org/svc/actions/runs?status=queued"
        st, h, runs = api(conn, "GET", path, tok)
        check(st == 200 and runs["total_count"] == 1, "runs %r" % runs)
        run = runs["workflow_runs"][0]
        check(run["id"] == j1["run_id"] and run["status"] == "queued" and
              run["name"] == "CI" and run["conclusion"] is None and
              run["path"].startswith(".github/workflows/ci.yml") and
              run["repository"]["full_name"] == "octo-org/svc" and
              run["jobs_url"].endswith("/runs/%d/jobs" % run["id"]),
              "run %r" % {k: run[k] for k in ("id", "status", "name")})
        st, h2, _ = api(conn, "GET", path, tok)
        check(h2["etag"] == h["etag"], "the same run list, another ETag")
        st, _, jobs = api(conn, "GET", "/repos/octo-org/svc/actions/runs/"
                          "%d/jobs?filter=latest" % run["id"], tok)
        check(jobs["total_count"] == 2, "jobs %r" % jobs)
        job = jobs["jobs"][0]
        for key in ("id", "run_id", "status", "conclusion", "labels",
                    "runner_id", "runner_name", "runner_group_id",
                    "created_at", "started_at", "completed_at", "name",
                    "workflow_name", "head_branch", "head_sha"):
            check(key in job, "job without %s" % key)
        check(job["status"] == "queued" and job["runner_id"] is None and
              job["runner_name"] is None and job["labels"] ==
              ["self-hosted", "linux"], "queued job %r" % job)
        st, _, one = api(conn, "GET", "/repos/octo-org/svc/actions/jobs/"
                         "%d" % j2["id"], tok)
        check(st == 200 and one["name"] == "test", "one job %r" % one)
        st, _, _ = api(conn, "GET", "/repos/octocat/x/actions/jobs/%d" %
                       j2["id"], tok)
        check(st == 404, "a job under another repo: %d" % st)

        st, _, body = api(conn, "POST", "/orgs/octo-org/actions/runners/"
                          "registration-token", tok)
        reg = runner_call(d, "register", {"token": body["token"],
                                          "name": "w1",
                                          "labels": "self-hosted,linux"})
        got = runner_call(d, "poll", {"runner_id": reg["runner_id"],
                                      "session": reg["session"]})
        check(got["job_id"] == j1["id"], "poll %r" % got)
        st, h3, runs = api(conn, "GET", path, tok,
                           headers={"If-None-Match": h["etag"]})
        check(st == 200 and runs["total_count"] == 0,
              "a started run is not queued: %d %r" % (st, runs))
        st, _, runs = api(conn, "GET", "/repos/octo-org/svc/actions/runs"
                          "?status=in_progress", tok)
        check(runs["total_count"] == 1, "in_progress %r" % runs)
        st, _, one = api(conn, "GET", "/repos/octo-org/svc/actions/jobs/"
                         "%d" % j1["id"], tok)
        check(one["status"] == "in_progress" and one["runner_name"] == "w1"
              and one["runner_group_name"] == "Default", "taken %r" % one)
        runner_call(d, "complete", {"runner_id": reg["runner_id"],
                                    "session": reg["session"],
                                    "job_id": j1["id"]})
        d.control("POST", "jobs/complete", {"id": j2["id"],
                                            "conclusion": "skipped"})
        st, _, runs = api(conn, "GET", "/repos/octo-org/svc/actions/runs"
                          "?status=completed", tok)
        check(runs["total_count"] == 1 and
              runs["workflow_runs"][0]["conclusion"] == "success",
              "completed %r" % runs)
        check(d.control("GET", "runners") == [], "the runner stayed")
        conn.close()


class Receiver:
    """A webhook receiver: records each delivery, answers self.status."""

    def __init__(self):
        import http.server
        received = self.received = []
        outer = self
        self.status = 200

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                received.append((dict(self.headers.items()),
                                 self.rfile.read(n), time.time()))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        import threading
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]

    def wait(self, n, timeout=5):
        deadline = time.monotonic() + timeout
        while len(self.received) < n:
            check(time.monotonic() < deadline, "%d deliveries, want %d" %
                  (len(self.received), n))
            time.sleep(0.02)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_double_webhooks_signed_and_redelivered():
    import hashlib
    import hmac
    vector = json.load(open(os.path.join(SRCDIR, "tests", "double",
                                         "fixtures", "webhook-signature-"
                                         "test-vector.json")))
    tok = secrets.token_hex(8)
    rx = Receiver()
    try:
        with double(tok) as d:
            d.control("POST", "repos", {"full_name": "octo-org/svc",
                                        "owner_type": "Organization"})
            d.control("POST", "repos", {"full_name": "octocat/mine"})
            secret = vector["secret"]
            hook = d.control("POST", "webhook", {"url": rx.url,
                                                 "secret": secret})
            rx.wait(1)
            check(len(rx.received) == 1 and
                  rx.received[0][0]["X-GitHub-Event"] == "ping",
                  "ping: %r" % [h for h, _, _ in rx.received])
            ping = json.loads(rx.received[0][1])
            check(ping["hook_id"] == hook["hook_id"] and "zen" in ping and
                  ping["hook"]["config"]["url"] == rx.url, "ping %r" % ping)

            job = d.control("POST", "jobs", {"repo": "octo-org/svc",
                                             "labels": ["self-hosted"]})
            rx.wait(2)
            headers, body, _ = rx.received[1]
            check(headers["X-GitHub-Event"] == "workflow_job" and
                  headers["Content-Type"] == "application/json" and
                  headers["User-Agent"].startswith("GitHub-Hookshot/") and
                  headers["X-GitHub-Hook-ID"] == str(hook["hook_id"]) and
                  len(headers["X-GitHub-Delivery"]) == 36,
                  "headers %r" % headers)
            mac = hmac.new(secret.encode(), body, hashlib.sha256)
            check(headers["X-Hub-Signature-256"] == "sha256=" +
                  mac.hexdigest(), "signature does not verify")
            p = json.loads(body)
            check(p["action"] == "queued" and
                  p["workflow_job"]["id"] == job["id"] and
                  p["workflow_job"]["status"] == "queued" and
                  p["workflow_job"]["runner_id"] is None and
                  p["workflow_job"]["labels"] == ["self-hosted"] and
                  p["repository"]["full_name"] == "octo-org/svc" and
                  p["organization"]["login"] == "octo-org" and
                  p["sender"]["login"] == "octocat", "payload %r" % p)
            d.control("POST", "jobs", {"repo": "octocat/mine"})
            rx.wait(3)
            check("organization" not in json.loads(rx.received[2][1]),
                  "a user's repo has no organization")

            # The documented test vector, through the double's signer.
            rx.status = 401
            sent = d.control("POST", "webhook/raw",
                             {"body": vector["payload"], "event": "ping"})
            headers, body, _ = rx.received[-1]
            check(body == vector["payload"].encode() and
                  headers["X-Hub-Signature-256"] ==
                  vector["X-Hub-Signature-256"],
                  "test vector: %r" % headers.get("X-Hub-Signature-256"))
            check(sent["status_code"] == 401 and
                  sent["answered_at"] >= sent["sent_at"] > 0,
                  "raw delivery record %r" % sent)
            d.control("POST", "webhook/raw", {"body": "{", "signature":
                                              None})
            check("X-Hub-Signature-256" not in rx.received[-1][0],
                  "signature null still sent one")
            d.control("POST", "webhook/raw", {"body": "{}", "signature":
                                              "sha256=00"})
            check(rx.received[-1][0]["X-Hub-Signature-256"] == "sha256=00",
                  "a given signature was not sent as is")

            rx.status = 204
            guid = rx.received[1][0]["X-GitHub-Delivery"]
            again = d.control("POST", "webhook/redeliver", {"guid": guid})
            check(again["redelivery"] is True and again["guid"] == guid and
                  again["status_code"] == 204, "redelivery %r" % again)
            check(rx.received[-1][1] == rx.received[1][1] and
                  rx.received[-1][0]["X-GitHub-Delivery"] == guid,
                  "a redelivery differs from the original")
            log = d.control("GET", "deliveries")
            check([x["event"] for x in log] == ["ping", "workflow_job",
                                                "workflow_job", "ping",
                                                "workflow_job",
                                                "workflow_job",
                                                "workflow_job"] and
                  log[1]["status_code"] == 200 and
                  log[1]["job_id"] == job["id"] and
                  log[1]["action"] == "queued" and
                  secret not in json.dumps(log), "deliveries %r" % log)
            r = request("POST", d.port, "/_double/webhook/redeliver",
                        body={"guid": "nope"})
            check(r.status == 404, "redeliver unknown: %d" % r.status)
            r = request("POST", d.port, "/_double/webhook",
                        body={"url": "ftp://x"})
            check(r.status == 400, "a bad hook url: %d" % r.status)
    finally:
        rx.close()


def test_double_faults_malformed_secondary_and_reset():
    tok = secrets.token_hex(8)
    with double(tok) as d:
        d.control("POST", "repos", {"full_name": "octocat/app"})
        conn = httpclient.HTTPConnection("127.0.0.1", d.port, timeout=10)
        d.control("POST", "fail", {"mode": "malformed", "count": 1,
                                   "path": "/user/repos"})
        st, _, _ = api(conn, "GET", "/user", tok)
        check(st == 200, "a request the fault is not for: %d" % st)
        st, h, body = api(conn, "GET", "/user/repos", tok)
        check(st == 200 and isinstance(body, bytes) and
              body.startswith(b"[") and "etag" not in h,
              "malformed: %d %r" % (st, body[:40]))
        try:
            json.loads(body)
            check(False, "the malformed body parses")
        except ValueError:
            pass
        st, _, body = api(conn, "GET", "/user/repos", tok)
        check(st == 200 and body[0]["full_name"] == "octocat/app",
              "after the fault: %d" % st)

        d.control("POST", "fail", {"status": 403, "count": 1,
                                   "retry_after": 2})
        st, h, err = api(conn, "GET", "/user/repos", tok)
        check(st == 403 and h["retry-after"] == "2" and
              "secondary rate limit" in err["message"] and
              h["x-ratelimit-remaining"] != "0", "secondary: %d %r" %
              (st, err))

        d.control("POST", "budget", {"remaining": 0, "reset_in": 2,
                                     "status": 429})
        st, h, err = api(conn, "GET", "/user/repos", tok)
        check(st == 429 and h["x-ratelimit-remaining"] == "0" and
              0 < int(h["x-ratelimit-reset"]) - time.time() <= 3,
              "exhausted: %d %r" % (st, h))
        check(not any(r["charged"] for r in d.requests()[-2:]),
              "refusals were charged")
        time.sleep(int(h["x-ratelimit-reset"]) - time.time() + 0.2)
        st, h, _ = api(conn, "GET", "/user/repos", tok)
        check(st == 200 and h["x-ratelimit-remaining"] == "4999",
              "after the reset: %d %s" % (st, h["x-ratelimit-remaining"]))
        conn.close()


def test_double_demo_world():
    tmp = tempfile.mkdtemp(prefix="ghdouble-it.")
    try:
        p = subprocess.Popen([
            "python3", os.path.join(SRCDIR, "tests", "double",
                                    "ghdouble.py"),
            "--listen", "127.0.0.1:0", "--token", "t", "--demo"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = p.stdout.readline().decode()
            port = int(line.rsplit(":", 1)[1])
            repos = json.loads(request("GET", port, "/_double/repos").body)
            owners = sorted(r["full_name"].split("/")[0] for r in repos)
            check(owners == ["octo-org"] * 2 + ["octocat"] * 3,
                  "demo world %r" % owners)
            texts = []
            for r in repos:
                for name in r["workflows"]:
                    st = request("GET", port, "/repos/%s/contents/.github/"
                                 "workflows/%s" % (r["full_name"], name),
                                 headers={"Authorization": "Bearer t"})
                    texts.append(base64.b64decode(
                        json.loads(st.body)["content"]).decode())
            text = "\n".join(texts)
            for form in ("runs-on: [self-hosted, linux]",
                         "runs-on: ubuntu-latest", "${{ matrix.os }}",
                         "group: Default", "runs-on: self-hosted"):
                check(form in text, "no %r in the demo workflows" % form)
        finally:
            p.terminate()
            p.wait(5)
            p.stdout.close()
            p.stderr.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
