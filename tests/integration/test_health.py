"""/health, /healthz and /api/v1/health against the real processes."""

import calendar
import random
import re
import time

from harness import Daemon, check, docker_server_versions, wait_for

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def check_envelope(r, path, status="success"):
    check(r.headers.get("content-type", "").startswith("application/json"),
          "%s: content-type %r" % (path, r.headers.get("content-type")))
    body = r.json()
    check(isinstance(body, dict), "%s: not an object" % path)
    check(body.get("status") == status, "%s: status %r, want %r" %
          (path, body.get("status"), status))
    check("data" in body, "%s: no data" % path)
    check(isinstance(body.get("message"), str), "%s: no message" % path)
    ts = body.get("timestamp")
    check(isinstance(ts, str) and ISO_UTC.match(ts),
          "%s: timestamp %r is not ISO 8601 UTC" % (path, ts))
    when = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
    check(abs(when - time.time()) < 120,
          "%s: timestamp %s is not now" % (path, ts))
    return body


def test_health_and_healthz():
    with Daemon() as d:
        r = d.get("/health")
        check(r.status == 200, "/health: %d" % r.status)
        check_envelope(r, "/health")
        for _ in range(5):
            r = d.get("/healthz")
            check(r.status == 200, "/healthz: %d" % r.status)
            check_envelope(r, "/healthz")
        r = d.get("/no-such-page")
        check(r.status == 404, "unknown path: %d, want 404" % r.status)
        # The supervisor writes the children's lines, so a /healthz line
        # could arrive a little late.
        time.sleep(1)
        lines = [ln for ln in d.log_lines() if "/healthz" in ln]
        check(not lines, "/healthz was logged: %r" % lines[:2])
        if not any("/no-such-page" in ln for ln in d.log_lines()):
            print("     note: requests are not logged even at debug level; "
                  "this test guards /healthz against a later change")


def processes_ok(d, body, roles):
    data = body["data"]
    procs = data.get("processes")
    check(isinstance(procs, dict), "no data.processes in %r" % data)
    want = dict(roles, supervisor=d.pid)
    for name, pid in want.items():
        p = procs.get(name)
        check(isinstance(p, dict), "no data.processes.%s" % name)
        check(p.get("pid") == pid and type(p.get("pid")) is int,
              "%s pid %r, want %d" % (name, p.get("pid"), pid))
        check(p.get("status") == "ok", "%s status %r" %
              (name, p.get("status")))
    return procs


def test_api_health_all_well():
    version, api = docker_server_versions()
    with Daemon(start=False) as d:
        # A budget nobody could hard-code, set before the poller's first
        # call so that every answer it sees carries it.
        d.double.control("POST", "budget",
                         {"remaining": random.randint(1000, 4000)})
        d.start()
        roles = d.wait_roles()
        body = None
        for _ in range(20):
            r, body = d.api_health()
            check(r.status == 200, "/api/v1/health: %d %r" %
                  (r.status, body))
            check_envelope(r, "/api/v1/health")
            procs = processes_ok(d, body, roles)
            gh = procs["poller"].get("github", {})
            # Read after the answer: equal unless the poller spent some
            # budget in between, which the next round will show.
            if gh.get("remaining") == d.double.remaining():
                break
            time.sleep(0.5)
        check(body["data"].get("healthy") is True, "data.healthy is %r" %
              body["data"].get("healthy"))
        eng = procs["docker"].get("engine", {})
        check(eng.get("version") == version, "engine version %r, want %r" %
              (eng.get("version"), version))
        check(eng.get("api_version") == api, "engine api_version %r, "
              "want %r" % (eng.get("api_version"), api))
        check(gh.get("reachable") is True, "github.reachable is %r" %
              gh.get("reachable"))
        check(type(gh.get("remaining")) is int, "github.remaining %r is "
              "not an int" % gh.get("remaining"))
        check(gh["remaining"] == d.double.remaining(),
              "github.remaining %r, the double says %d" %
              (gh["remaining"], d.double.remaining()))


def wait_unhealthy(d, roles, what):
    def down():
        r, body = d.api_health()
        if r.status != 503:
            return None
        return r, body
    r, body = wait_for(down, 15, "503 from /api/v1/health " + what,
                       interval=0.5)
    check_envelope(r, "/api/v1/health", status="error")
    procs = processes_ok(d, body, roles)
    gh = procs["poller"].get("github", {})
    check(gh.get("reachable") is False, "%s: github.reachable is %r" %
          (what, gh.get("reachable")))
    check(body["data"].get("healthy") is False, "%s: healthy is %r" %
          (what, body["data"].get("healthy")))
    check(isinstance(procs["docker"].get("engine", {}).get("version"), str),
          "%s: the docker engine is no longer reported" % what)


def test_api_health_github_down():
    with Daemon() as d:
        roles = d.wait_roles()
        r, _ = d.api_health()
        check(r.status == 200, "healthy at first: %d" % r.status)
        d.double.control("POST", "fail", {"status": 500, "count": 100000})
        wait_unhealthy(d, roles, "while GitHub answers 500")
        d.double.control("POST", "reset")
        wait_for(lambda: d.api_health()[0].status == 200, 15,
                 "200 again once GitHub answers", interval=0.5)
        d.double.stop()
        wait_unhealthy(d, roles, "with GitHub stopped")
