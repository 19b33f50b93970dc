"""POST /api/v1/webhook: GitHub's deliveries, signed with HMAC-SHA256.

The real daemon verifies in the poller; the signatures are computed here
with Python's hmac over the exact bytes sent, as GitHub does."""

import hashlib
import hmac
import json
import os
import re
import secrets
import uuid

from harness import SRCDIR, Daemon, check, request, wait_for

FIXTURES = os.path.join(SRCDIR, "tests", "double", "fixtures")
API_TOKEN = "it-webhook-api-token-" + "7" * 20


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def sign(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body,
                                hashlib.sha256).hexdigest()


def hook_daemon(secret, httpd_extra=""):
    """A daemon with github.webhook_secret_file (when secret is set)."""
    d = Daemon(start=False)
    try:
        text = d.config_text()
        if secret is not None:
            path = os.path.join(d.tmp, "hook-secret")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secret + "\n")
            api = '  api_url: "%s"\n' % d.double.url
            text = text.replace(api, api + "  webhook_secret_file: %s\n" %
                                path)
        listen = '  listen: "127.0.0.1:%d"\n' % d.port
        text = text.replace(listen, listen + httpd_extra)
        d.write(text=text)
        d.start()
    except BaseException:
        d.close()
        raise
    return d


def deliver(port, event, body, signature=None, delivery=None,
            ctype="application/json", headers=None):
    hdrs = {"Content-Type": ctype}
    if event is not None:
        hdrs["X-GitHub-Event"] = event
    if signature is not None:
        hdrs["X-Hub-Signature-256"] = signature
    hdrs["X-GitHub-Delivery"] = delivery or str(uuid.uuid4())
    hdrs.update(headers or {})
    r = request("POST", port, "/api/v1/webhook", body=body, headers=hdrs)
    try:
        return r, r.json()
    except Exception:
        return r, None


def metrics(d):
    r = d.get("/metrics")
    check(r.status == 200, "/metrics: %d" % r.status)
    out = {}
    for line in r.body.decode().splitlines():
        m = re.match(r'ephemerd_webhook_deliveries_total\{result="(\w+)"\} '
                     r'(\d+)$', line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def test_signed_deliveries():
    secret = "it-hook-" + secrets.token_hex(16)
    extra = "  api_tokens: [%s]\n" % API_TOKEN
    with hook_daemon(secret, extra) as d:
        before = metrics(d)
        check(set(before) >= {"accepted", "duplicate", "ping", "ignored",
                              "bad_signature", "malformed", "unconfigured"},
              "webhook series: %r" % before)
        check(all(v == 0 for v in before.values()), "not zero: %r" % before)

        # A ping, without any bearer token although tokens are configured.
        ping = fixture("webhook-ping.with-organization.payload.json")
        r, env = deliver(d.port, "ping", ping, sign(secret, ping))
        check(r.status == 200 and env["status"] == "success",
              "ping: %d %r" % (r.status, r.body[:300]))
        check(env["data"]["zen"] == json.loads(ping)["zen"] and
              env["data"]["hook_id"] == json.loads(ping)["hook_id"],
              "ping data: %r" % env["data"])
        r = d.get("/api/v1/runners")
        check(r.status == 401, "the API still wants its token: %d" %
              r.status)

        # Wrong and missing signatures change nothing, GitHub untouched.
        queued = fixture("webhook-workflow_job.queued.payload.json")
        asked = len(d.double.requests())
        bad = sign("not-the-secret", queued)
        r, env = deliver(d.port, "workflow_job", queued, bad)
        check(r.status == 401 and "signature" in env["message"],
              "bad signature: %d %r" % (r.status, r.body[:300]))
        flipped = sign(secret, queued + b" ")
        r, env = deliver(d.port, "workflow_job", queued, flipped)
        check(r.status == 401, "signature of other bytes: %d" % r.status)
        r, env = deliver(d.port, "workflow_job", queued, None)
        check(r.status == 401 and "missing" in env["message"],
              "missing signature: %d %r" % (r.status, r.body[:300]))
        r, env = deliver(d.port, "workflow_job", queued, "sha256=zz")
        check(r.status == 401, "malformed signature: %d" % r.status)
        check(len(d.double.requests()) == asked,
              "a refused delivery reached GitHub")
        m = metrics(d)
        check(m["bad_signature"] == 4 and m["accepted"] == 0,
              "after refusals: %r" % m)

        # The queued job is accepted once; its redelivery is a duplicate.
        guid = str(uuid.uuid4())
        r, env = deliver(d.port, "workflow_job", queued,
                         sign(secret, queued), delivery=guid)
        check(r.status == 202 and env["message"] == "accepted",
              "queued: %d %r" % (r.status, r.body[:300]))
        check(env["data"]["job_id"] == 289782451 and
              env["data"]["action"] == "queued" and
              env["data"]["repository"] == "Codertocat/Hello-World",
              "queued data: %r" % env["data"])
        r, env = deliver(d.port, "workflow_job", queued,
                         sign(secret, queued), delivery=guid)
        check(r.status == 200 and "duplicate" in env["message"],
              "redelivery: %d %r" % (r.status, r.body[:300]))

        # Well signed but not the event's JSON: 400 with the reason.
        junk = b'{"action": "queued", "workflow_job": '
        r, env = deliver(d.port, "workflow_job", junk, sign(secret, junk))
        check(r.status == 400 and "JSON" in env["message"],
              "malformed JSON: %d %r" % (r.status, r.body[:300]))
        nojob = b'{"action": "queued"}'
        r, env = deliver(d.port, "workflow_job", nojob, sign(secret, nojob))
        check(r.status == 400 and "workflow_job" in env["message"],
              "no workflow_job: %d %r" % (r.status, r.body[:300]))

        # Other events and actions that change nothing: 200, ignored.
        push = b'{"ref": "refs/heads/main"}'
        r, env = deliver(d.port, "push", push, sign(secret, push))
        check(r.status == 200 and "ignored" in env["message"],
              "push: %d %r" % (r.status, r.body[:300]))
        waiting = fixture("webhook-workflow_job.waiting.payload.json")
        r, env = deliver(d.port, "workflow_job", waiting,
                         sign(secret, waiting))
        check(r.status == 200, "waiting: %d %r" % (r.status, r.body[:300]))

        # What httpd refuses by itself.
        form = b"payload=" + queued[:100]
        r, env = deliver(d.port, "workflow_job", form, sign(secret, form),
                         ctype="application/x-www-form-urlencoded")
        check(r.status == 415 and "application/json" in env["message"] and
              "settings" in env["message"],
              "form delivery: %d %r" % (r.status, r.body[:300]))
        r, env = deliver(d.port, None, ping, sign(secret, ping))
        check(r.status == 400 and "X-GitHub-Event" in env["message"],
              "no event: %d %r" % (r.status, r.body[:300]))
        r, env = deliver(d.port, "bad/event", ping, sign(secret, ping))
        check(r.status == 400, "bad event name: %d" % r.status)
        r, env = deliver(d.port, "ping", ping, sign(secret, ping),
                         delivery="two words")
        check(r.status == 400 and "X-GitHub-Delivery" in env["message"],
              "bad delivery id: %d %r" % (r.status, r.body[:300]))
        big = b'{"zen": "' + b"x" * (70 * 1024) + b'", "hook_id": 1}'
        r, env = deliver(d.port, "ping", big, sign(secret, big))
        check(r.status == 413, "70 KiB body: %d" % r.status)
        r = request("GET", d.port, "/api/v1/webhook")
        check(r.status == 405, "GET: %d" % r.status)

        m = metrics(d)
        want = {"accepted": 1, "duplicate": 1, "ping": 1, "ignored": 2,
                "bad_signature": 4, "malformed": 2, "unconfigured": 0}
        check(all(m[k] == v for k, v in want.items()),
              "metrics %r, want %r" % (m, want))

        # One line per delivery that reached the poller; no secret.
        d.wait_log(r"INFO poller: webhook delivery %s: event workflow_job, "
                   r"action queued, job 289782451, repository "
                   r"Codertocat/Hello-World: accepted" % guid, 3)
        lines = [x for x in d.log_lines() if "webhook delivery" in x]
        check(len(lines) == sum(want.values()),
              "%d delivery lines for %d deliveries" %
              (len(lines), sum(want.values())))
        log = d.log()
        check(secret not in log, "the webhook secret is in the log")
        check(sign(secret, queued)[7:] not in log and bad[7:] not in log,
              "a signature is in the log")
        check("Anything added dilutes" not in log, "a body is in the log")


def test_no_secret_configured():
    with hook_daemon(None) as d:
        body = fixture("webhook-ping.with-organization.payload.json")
        r, env = deliver(d.port, "ping", body, sign("whatever", body))
        check(r.status == 503 and
              env["message"] == "no webhook secret is configured",
              "no secret: %d %r" % (r.status, r.body[:300]))
        wait_for(lambda: metrics(d).get("unconfigured") == 1, 3,
                 "the unconfigured delivery counted")


def test_webhook_through_nginx():
    from test_nginx import Nginx

    secret = "it-hook-" + secrets.token_hex(16)
    extra = "  trusted_proxies: [127.0.0.1]\n"
    with hook_daemon(secret, extra) as d:
        ng = Nginx(d.tmp, d.port)
        try:
            body = fixture("webhook-ping.with-organization.payload.json")
            status, _, raw = ng.request("POST", "/api/v1/webhook", body=body,
                                        headers={
                                            "Content-Type":
                                            "application/json",
                                            "X-GitHub-Event": "ping",
                                            "X-GitHub-Delivery":
                                            str(uuid.uuid4()),
                                            "X-Hub-Signature-256":
                                            sign(secret, body)})
            check(status == 200 and b'"pong"' in raw,
                  "signed ping via nginx: %d %r" % (status, raw[:200]))
            status, _, raw = ng.request("POST", "/api/v1/webhook", body=body,
                                        headers={
                                            "Content-Type":
                                            "application/json",
                                            "X-GitHub-Event": "ping",
                                            "X-Hub-Signature-256":
                                            sign("wrong", body)})
            check(status == 401, "bad signature via nginx: %d" % status)
        finally:
            ng.stop()
