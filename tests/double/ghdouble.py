#!/usr/bin/python3
"""A test double of GitHub's REST API for ephemerd's tests.

It answers like api.github.com does (headers, rate limits, ETags, error
bodies), using the documented response examples in fixtures/ as the
templates of its answers.  Tests steer it through /_double/ endpoints,
which need no credentials.

    python3 ghdouble.py --listen 127.0.0.1:0 --token T [--token U]
        [--login octocat] [--rate-limit 5000] [--log FILE]

With port 0 the first line on stdout is "listening on 127.0.0.1:NNNN".

New endpoints are added with the @route decorator: a handler receives
the request context and the regex match, and returns a Response.
"""

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import urllib.parse
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "fixtures")
DOC_URL = "https://docs.github.com/rest"
RATE_DOC_URL = ("https://docs.github.com/rest/overview/"
                "rate-limits-for-the-rest-api")
CORE_LIMIT = 5000
ANON_LIMIT = 60
WINDOW = 3600
MAX_BODY = 10 * 1024 * 1024
IDLE_TIMEOUT = 120


def load_fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return json.load(f)


class Response:
    """What a handler returns; body is a JSON-able object, bytes or None."""

    def __init__(self, status, body=None, headers=None, charge=True,
                 etag=True, last_modified=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.charge = charge
        self.etag = etag
        self.last_modified = last_modified


def error(status, message, doc=DOC_URL, with_status=True, **extra):
    body = {"message": message, "documentation_url": doc}
    if with_status:
        body["status"] = str(status)
    body.update(extra)
    return Response(status, body, etag=False)


class Budget:
    """One primary rate-limit bucket (per token, or per client address)."""

    def __init__(self, limit):
        self.limit = limit
        self.used = 0
        self.reset = int(time.time()) + WINDOW

    def roll(self):
        now = int(time.time())
        if now >= self.reset:
            self.used = 0
            self.reset = now + WINDOW

    @property
    def remaining(self):
        return max(self.limit - self.used, 0)

    def as_dict(self):
        return {"limit": self.limit, "used": self.used,
                "remaining": self.remaining, "reset": self.reset}


class State:
    """Everything the double remembers; every access holds self.lock."""

    def __init__(self, tokens, login, rate_limit):
        self.lock = threading.Lock()
        self.tokens = list(tokens)
        self.login = login
        self.rate_limit = rate_limit
        self.reset()

    def reset(self):
        self.budgets = {t: Budget(self.rate_limit) for t in self.tokens}
        self.anon = {}
        self.requests = []
        self.fail = None
        self.delay = None
        self.runners = {}           # id -> runner entry (see new_runner)
        self.next_runner_id = 1
        self.label_ids = {}         # lower-case label name -> id
        self.reg_tokens = {}        # token -> {scope, scope_name, expires}
        self.remove_tokens = {}
        self.groups = {}            # org (lower case) -> extra groups
        self.next_group_id = 3      # 1 is Default, 2 GitHub-hosted
        self.jobs = []
        self.next_job_id = 1

    def label_id(self, name):
        key = name.lower()
        if key not in self.label_ids:
            self.label_ids[key] = len(self.label_ids) + 1
        return self.label_ids[key]

    def runners_of(self, scope, scope_name):
        return sorted((r for r in self.runners.values()
                       if r["scope"] == scope and
                       r["scope_name"].lower() == scope_name.lower()),
                      key=lambda r: r["id"])

    def new_runner(self, scope, scope_name, name, labels, group_id, how):
        rid = self.next_runner_id
        self.next_runner_id += 1
        r = {"id": rid, "name": name, "scope": scope,
             "scope_name": scope_name, "labels": list(labels),
             "runner_group_id": group_id, "online": False, "busy": False,
             "os": "unknown", "registered_by": how,
             "secret": secrets.token_hex(16), "session": None,
             "job": None, "created": time.time()}
        self.runners[rid] = r
        return r

    def group_ids(self, org):
        return [1] + [g["id"] for g in self.groups.get(org.lower(), [])]

    def take_job(self, runner):
        """The broker: the oldest queued job this runner can run."""
        have = {lab.lower() for lab in runner["labels"]}
        for job in self.jobs:
            if job["status"] != "queued":
                continue
            owner = job["repo"].split("/")[0].lower()
            if runner["scope"] == "repo" and \
                    job["repo"].lower() != runner["scope_name"].lower():
                continue
            if runner["scope"] == "org" and \
                    owner != runner["scope_name"].lower():
                continue
            if not {lab.lower() for lab in job["labels"]} <= have:
                continue
            job["status"] = "in_progress"
            job["runner_name"] = runner["name"]
            job["runner_id"] = runner["id"]
            job["started_at"] = time.time()
            runner["busy"] = True
            runner["job"] = job["id"]
            return job
        return None

    def budget_for(self, token, client):
        if token is None:
            b = self.anon.setdefault(client, Budget(ANON_LIMIT))
        else:
            b = self.budgets[token]
        b.roll()
        return b

    def take_fail(self):
        """The injected failure for this request, if any is pending."""
        if self.fail is None or self.fail["count"] <= 0:
            return None
        self.fail["count"] -= 1
        f = dict(self.fail)
        if self.fail["count"] <= 0:
            self.fail = None
        return f

    def take_delay(self):
        if self.delay is None or self.delay["count"] <= 0:
            return 0.0
        self.delay["count"] -= 1
        seconds = self.delay["seconds"]
        if self.delay["count"] <= 0:
            self.delay = None
        return seconds


ROUTES = []


def route(method, pattern):
    """Register a handler for METHOD and a full-path regex (no query)."""
    rx = re.compile("^" + pattern + "$")

    def register(fn):
        ROUTES.append((method, rx, fn))
        return fn
    return register


def paginate(ctx, items, default=30, maximum=100):
    """Slice items as GitHub does and build its Link header.

    Returns (page_items, headers)."""
    q = ctx.query
    try:
        per_page = int(q.get("per_page", [default])[0])
        page = int(q.get("page", [1])[0])
    except ValueError:
        per_page, page = default, 1
    per_page = min(max(per_page, 1), maximum)
    page = max(page, 1)
    last = max((len(items) + per_page - 1) // per_page, 1)
    start = (page - 1) * per_page
    chunk = items[start:start + per_page]

    def url(n):
        params = {k: v[0] for k, v in q.items()}
        params["per_page"] = str(per_page)
        params["page"] = str(n)
        return "<%s%s?%s>" % (ctx.base_url, ctx.path,
                              urllib.parse.urlencode(params))
    links = []
    if page > 1:
        links.append(url(page - 1) + '; rel="prev"')
    if page < last:
        links.append(url(page + 1) + '; rel="next"')
        links.append(url(last) + '; rel="last"')
    if page > 1:
        links.append(url(1) + '; rel="first"')
    headers = {"Link": ", ".join(links)} if links else {}
    return chunk, headers


# ---- GitHub endpoints -------------------------------------------------

@route("GET", "/rate_limit")
def get_rate_limit(ctx, m):
    body = load_fixture("rate-limit.openapi-example.json")
    core = ctx.budget.as_dict()
    body["resources"]["core"] = core
    body["rate"] = dict(core)
    return Response(200, body, charge=False)


@route("GET", "/user")
def get_user(ctx, m):
    body = load_fixture("user.openapi-example.json")
    login = ctx.state.login
    body["login"] = login
    for key, value in list(body.items()):
        if isinstance(value, str) and "octocat" in value and key != "name":
            body[key] = value.replace("octocat", login)
    return Response(200, body,
                    last_modified=formatdate(1200285215, usegmt=True))


# ---- self-hosted runners ----------------------------------------------

REPO = r"/repos/(?P<owner>[A-Za-z0-9-]+)/(?P<repo>[A-Za-z0-9._-]+)"
ORG = r"/orgs/(?P<org>[A-Za-z0-9-]+)"
READ_ONLY_LABELS = ("self-hosted", "linux", "windows", "macos", "x64",
                    "arm", "arm64", "x86")


def scope_of(m):
    d = m.groupdict()
    if d.get("org"):
        return "org", d["org"]
    return "repo", "%s/%s" % (d["owner"], d["repo"])


def github_time(t):
    """GitHub's expires_at form: milliseconds and a numeric offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
        ".%03d+00:00" % int((t % 1) * 1000)


def runner_json(state, r):
    return {
        "id": r["id"],
        "runner_group_id": r["runner_group_id"],
        "name": r["name"],
        "os": r["os"],
        "status": "online" if r["online"] else "offline",
        "busy": r["busy"],
        "ephemeral": True,
        "labels": [{"id": state.label_id(lab), "name": lab,
                    "type": "read-only" if lab.lower() in READ_ONLY_LABELS
                    else "custom"} for lab in r["labels"]],
    }


def new_token(store, scope, scope_name, prefix):
    token = prefix + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "234567") for _ in range(28))
    expires = time.time() + WINDOW
    store[token] = {"scope": scope, "scope_name": scope_name,
                    "expires": expires}
    return Response(201, {"token": token, "expires_at": github_time(expires)})


def registration_token(ctx, m):
    scope, name = scope_of(m)
    return new_token(ctx.state.reg_tokens, scope, name, "A")


def remove_token(ctx, m):
    scope, name = scope_of(m)
    return new_token(ctx.state.remove_tokens, scope, name, "R")


def check_jit_body(state, scope, scope_name, args):
    """An error Response for a bad generate-jitconfig body, or None."""
    if not isinstance(args, dict):
        return error(400, "Body should be a JSON object", with_status=False)
    for key in ("name", "runner_group_id", "labels"):
        if key not in args:
            return error(422, "Invalid input: object is missing required "
                         "key: %s" % key)
    name, group, labels = args["name"], args["runner_group_id"], \
        args["labels"]
    if not isinstance(name, str) or not name:
        return error(422, "Invalid input: name must be a non-empty string")
    if not isinstance(group, int) or isinstance(group, bool):
        return error(422, "Invalid input: runner_group_id must be an "
                     "integer")
    if not isinstance(labels, list) or not 1 <= len(labels) <= 100 or \
            not all(isinstance(x, str) and x for x in labels):
        return error(422, "Invalid input: labels must have 1 to 100 "
                     "non-empty strings")
    if "work_folder" in args and not isinstance(args["work_folder"], str):
        return error(422, "Invalid input: work_folder must be a string")
    if group == 2:
        return error(403, "Resource not accessible by integration")
    owner = scope_name.split("/")[0]
    known = [1] if scope == "repo" else state.group_ids(owner)
    if group not in known:
        return error(404, "Not Found")
    for r in state.runners_of(scope, scope_name):
        if r["name"].lower() == name.lower():
            return error(409, "Already exists - A runner with the name "
                         "%s already exists." % name)
    return None


def generate_jitconfig(ctx, m):
    scope, scope_name = scope_of(m)
    args = ctx.json()
    if isinstance(args, Response):
        return args
    bad = check_jit_body(ctx.state, scope, scope_name, args)
    if bad is not None:
        return bad
    r = ctx.state.new_runner(scope, scope_name, args["name"], args["labels"],
                             args["runner_group_id"], "jit")
    config = {"runner_id": r["id"], "name": r["name"], "scope": scope,
              "scope_name": scope_name, "labels": r["labels"],
              "secret": r["secret"], "url": ctx.base_url}
    encoded = base64.b64encode(json.dumps(config).encode()).decode()
    return Response(201, {"runner": runner_json(ctx.state, r),
                          "encoded_jit_config": encoded})


def list_runners(ctx, m):
    scope, scope_name = scope_of(m)
    items = [runner_json(ctx.state, r)
             for r in ctx.state.runners_of(scope, scope_name)]
    page, headers = paginate(ctx, items)
    return Response(200, {"total_count": len(items), "runners": page},
                    headers=headers)


def find_runner(ctx, m):
    scope, scope_name = scope_of(m)
    r = ctx.state.runners.get(int(m.group("id")))
    if r is None or r["scope"] != scope or \
            r["scope_name"].lower() != scope_name.lower():
        return None
    return r


def get_runner(ctx, m):
    r = find_runner(ctx, m)
    if r is None:
        return error(404, "Not Found")
    return Response(200, runner_json(ctx.state, r))


def delete_runner(ctx, m):
    r = find_runner(ctx, m)
    if r is None:
        return error(404, "Not Found")
    if r["busy"]:
        return error(422, 'Bad request - Runner "%s" is still running a '
                     'job' % r["name"])
    del ctx.state.runners[r["id"]]
    return Response(204)


def list_runner_groups(ctx, m):
    org = m.group("org")
    default = load_fixture("actions-runner-groups-list.openapi-example.json")
    base = default["runner_groups"][0]
    groups = [dict(base, runners_url="%s/orgs/%s/actions/runner_groups/1/"
                   "runners" % (ctx.base_url, org))]
    for g in ctx.state.groups.get(org.lower(), []):
        groups.append(dict(base, id=g["id"], name=g["name"],
                           default=False, visibility="all",
                           runners_url="%s/orgs/%s/actions/runner_groups/"
                           "%d/runners" % (ctx.base_url, org, g["id"])))
    page, headers = paginate(ctx, groups)
    return Response(200, {"total_count": len(groups), "runner_groups": page},
                    headers=headers)


for _prefix in (REPO, ORG):
    route("POST", _prefix + "/actions/runners/registration-token")(
        registration_token)
    route("POST", _prefix + "/actions/runners/remove-token")(remove_token)
    route("POST", _prefix + "/actions/runners/generate-jitconfig")(
        generate_jitconfig)
    route("GET", _prefix + "/actions/runners")(list_runners)
    route("GET", _prefix + r"/actions/runners/(?P<id>\d+)")(get_runner)
    route("DELETE", _prefix + r"/actions/runners/(?P<id>\d+)")(delete_runner)
route("GET", ORG + "/actions/runner-groups")(list_runner_groups)


# ---- the fake runner's side --------------------------------------------

def public_runner(r):
    out = {k: v for k, v in r.items() if k not in ("secret", "session")}
    return out


def label_list(value):
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return None
    labels = [str(x).strip() for x in value if str(x).strip()]
    return labels or None


def register_jit(state, encoded):
    try:
        config = json.loads(base64.b64decode(encoded, validate=True))
        rid, secret = int(config["runner_id"]), str(config["secret"])
    except (ValueError, KeyError, TypeError):
        return 400, {"error": "the JIT configuration cannot be decoded"}
    r = state.runners.get(rid)
    if r is None:
        return 404, {"error": "The runner registration has been deleted "
                     "from the server, please re-configure."}
    if not secrets.compare_digest(r["secret"], secret):
        return 401, {"error": "the JIT configuration is not valid"}
    if r["session"] is not None:
        return 409, {"error": "A session for this runner already exists."}
    return 200, r


def register_token(state, args):
    token = args.get("token")
    t = state.reg_tokens.get(token) if isinstance(token, str) else None
    if t is None or t["expires"] < time.time():
        return 401, {"error": "the registration token is not valid"}
    name = args.get("name")
    labels = label_list(args.get("labels", "self-hosted"))
    if not isinstance(name, str) or not name or labels is None:
        return 400, {"error": "name and labels are required"}
    if "self-hosted" not in [x.lower() for x in labels]:
        labels.insert(0, "self-hosted")
    for other in state.runners_of(t["scope"], t["scope_name"]):
        if other["name"].lower() == name.lower():
            return 409, {"error": "A runner exists with the same name"}
    return 200, state.new_runner(t["scope"], t["scope_name"], name, labels,
                                 1, "token")


def runner_register(state, args):
    if args.get("jit_config"):
        status, r = register_jit(state, args["jit_config"])
    else:
        status, r = register_token(state, args)
    if status != 200:
        return status, r
    r["online"] = True
    r["os"] = "Linux"
    r["session"] = secrets.token_hex(16)
    return 200, {"runner_id": r["id"], "name": r["name"],
                 "scope": r["scope"], "scope_name": r["scope_name"],
                 "labels": r["labels"], "session": r["session"]}


def runner_session(state, args):
    """The runner a poll or complete is for, or (status, error)."""
    try:
        r = state.runners.get(int(args.get("runner_id")))
    except (TypeError, ValueError):
        return None, (400, {"error": "runner_id is required"})
    if r is None:
        return None, (404, {"error": "The runner no longer exists on the "
                            "server. Please reconfigure the runner."})
    if r["session"] is None or \
            not secrets.compare_digest(r["session"],
                                       str(args.get("session", ""))):
        return None, (401, {"error": "no session for this runner"})
    return r, None


def runner_poll(state, args):
    r, err = runner_session(state, args)
    if err is not None:
        return err
    if r["job"] is not None:
        job = state.jobs[r["job"] - 1]
    else:
        job = state.take_job(r)
    if job is None:
        return 200, {"job_id": None}
    return 200, {"job_id": job["id"], "repo": job["repo"],
                 "duration": job["duration"]}


def runner_complete(state, args):
    r, err = runner_session(state, args)
    if err is not None:
        return err
    if r["job"] is None or str(r["job"]) != str(args.get("job_id")):
        return 400, {"error": "this runner does not run that job"}
    job = state.jobs[r["job"] - 1]
    job["status"] = "completed"
    job["conclusion"] = str(args.get("conclusion", "success"))
    job["completed_at"] = time.time()
    # An ephemeral runner is deregistered once its job is done.
    del state.runners[r["id"]]
    return 200, {"ok": True, "removed": r["id"]}


# ---- the server -------------------------------------------------------

class Context:
    def __init__(self, handler, state, path, query, token, budget, body):
        self.handler = handler
        self.state = state
        self.path = path
        self.query = query
        self.token = token
        self.budget = budget
        self.body = body
        host = handler.headers.get("Host") or "%s:%d" % \
            handler.server.server_address[:2]
        self.base_url = "http://" + host

    def json(self):
        """The request body as JSON, or an error Response to return."""
        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            return error(400, "Problems parsing JSON", with_status=False)


def etag_of(payload):
    return '"%s"' % hashlib.sha256(payload).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    def log_message(self, fmt, *args):
        pass

    def version_string(self):
        return "GitHub.com"

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if te == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
                if len(data) > MAX_BODY:
                    raise ValueError("body too large")
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def dispatch(self):
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            self.send_raw(400, b"bad request\n", "text/plain")
            return
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/_double/runner/"):
            self.runner_protocol(url.path, body)
            return
        if url.path.startswith("/_double/"):
            self.control(url.path, body)
            return
        self.api(url, body)

    # ---- control endpoints, for tests; no credentials needed

    def control(self, path, body):
        state = self.server.state
        try:
            args = json.loads(body.decode("utf-8") or "{}")
            if not isinstance(args, dict):
                raise ValueError("body must be an object")
        except ValueError as e:
            self.send_json(400, {"error": "bad JSON: %s" % e})
            return
        with state.lock:
            result = self.control_locked(state, path, args)
        if result is None:
            self.send_json(404, {"error": "no such control endpoint"})
        else:
            self.send_json(200, result)

    def control_locked(self, state, path, args):
        cmd = self.command
        if cmd == "GET" and path == "/_double/requests":
            return list(state.requests)
        if cmd == "GET" and path == "/_double/budgets":
            return [state.budget_for(t, None).as_dict()
                    for t in state.tokens]
        if cmd == "POST" and path == "/_double/fail":
            state.fail = {"status": int(args.get("status", 500)),
                          "count": int(args.get("count", 1)),
                          "message": args.get("message"),
                          "retry_after": args.get("retry_after")}
            return {"ok": True}
        if cmd == "POST" and path == "/_double/delay":
            state.delay = {"seconds": float(args.get("seconds", 1)),
                           "count": int(args.get("count", 1))}
            return {"ok": True}
        if cmd == "POST" and path == "/_double/budget":
            for t in state.tokens:
                b = state.budget_for(t, None)
                b.used = max(b.limit - int(args["remaining"]), 0)
            return {"ok": True}
        if cmd == "POST" and path == "/_double/reset":
            state.reset()
            return {"ok": True}
        if path == "/_double/jobs":
            return self.control_jobs(state, cmd, args)
        if cmd == "GET" and path == "/_double/runners":
            return [public_runner(r) for r in
                    sorted(state.runners.values(), key=lambda r: r["id"])]
        if cmd == "POST" and path == "/_double/runner-groups":
            org = str(args["org"]).lower()
            group = {"id": state.next_group_id, "name": str(args["name"])}
            state.next_group_id += 1
            state.groups.setdefault(org, []).append(group)
            return group
        return None

    @staticmethod
    def control_jobs(state, cmd, args):
        if cmd == "GET":
            return list(state.jobs)
        if cmd != "POST":
            return None
        labels = args.get("labels", ["self-hosted"])
        if not isinstance(labels, list):
            labels = [str(labels)]
        job = {"id": state.next_job_id, "repo": str(args["repo"]),
               "labels": [str(x) for x in labels],
               "duration": float(args.get("duration", 1)),
               "status": "queued", "conclusion": None,
               "runner_name": None, "runner_id": None,
               "created_at": time.time(), "started_at": None,
               "completed_at": None}
        state.next_job_id += 1
        state.jobs.append(job)
        return job

    # ---- the fake runner's protocol, for the test runner image

    def runner_protocol(self, path, body):
        state = self.server.state
        try:
            args = json.loads(body.decode("utf-8") or "{}")
            if not isinstance(args, dict):
                raise ValueError("body must be an object")
        except ValueError as e:
            self.runner_answer(400, {"error": "bad JSON: %s" % e})
            return
        action = path[len("/_double/runner/"):]
        handlers = {"register": runner_register, "poll": runner_poll,
                    "complete": runner_complete}
        if self.command != "POST" or action not in handlers:
            self.runner_answer(404, {"error": "no such runner endpoint"})
            return
        with state.lock:
            status, obj = handlers[action](state, args)
        self.runner_answer(status, obj)

    def runner_answer(self, status, obj):
        """JSON, or key=value lines for a client that accepts text/plain
        (the busybox entrypoint reads those with sed)."""
        if "text/plain" in self.headers.get("Accept", ""):
            lines = ["%s=%s" % (k, ",".join(map(str, v))
                                if isinstance(v, list) else
                                "" if v is None else v)
                     for k, v in obj.items()]
            self.send_raw(status, ("\n".join(lines) + "\n").encode(),
                          "text/plain; charset=utf-8")
        else:
            self.send_json(status, obj)

    # ---- the API proper

    def api(self, url, body):
        state = self.server.state
        if not self.headers.get("User-Agent"):
            self.forbid_no_agent()
            return
        with state.lock:
            seconds = state.take_delay()
        if seconds > 0:
            time.sleep(seconds)
        token = self.token()
        with state.lock:
            if token is not None and token not in state.budgets:
                token = False
            resp, budget = self.answer(state, url, body, token)
            self.charge(budget, resp)
            headers = self.rate_headers(budget)
            self.record(state, resp.status)
        self.send(resp, headers)

    def token(self):
        """The bearer token, None when absent, False when malformed."""
        auth = self.headers.get("Authorization")
        if auth is None:
            return None
        parts = auth.split(None, 1)
        if len(parts) != 2 or parts[0].lower() not in ("bearer", "token"):
            return False
        return parts[1].strip()

    def answer(self, state, url, body, token):
        budget = state.budget_for(token or None, self.client_address[0])
        fail = state.take_fail()
        if fail is not None:
            resp = error(fail["status"], fail["message"] or "Server Error",
                         with_status=fail["status"] < 500)
            if fail["retry_after"] is not None:
                resp.headers["Retry-After"] = str(fail["retry_after"])
            resp.charge = False
            return resp, budget
        if not token:
            resp = error(401, "Bad credentials", with_status=False)
            resp.charge = False
            return resp, budget
        if budget.remaining <= 0:
            resp = error(403, "API rate limit exceeded for user ID 1.",
                         doc=RATE_DOC_URL)
            resp.charge = False
            return resp, budget
        ctx = Context(self, state, url.path,
                      urllib.parse.parse_qs(url.query), token, budget, body)
        return self.route(ctx), budget

    def route(self, ctx):
        """GitHub answers an unknown path and a wrong method alike: 404."""
        for method, rx, fn in ROUTES:
            m = rx.match(ctx.path)
            if m is None:
                continue
            if method == self.command or \
                    (method == "GET" and self.command == "HEAD"):
                return fn(ctx, m)
        return error(404, "Not Found")

    def charge(self, budget, resp):
        if self.command in ("GET", "HEAD") and resp.status == 200:
            self.conditional(resp)
        # Every authenticated answer costs one, as on GitHub, except the
        # ones GitHub documents as free: 304s and GET /rate_limit.
        if resp.charge and resp.status != 304:
            budget.used += 1

    def conditional(self, resp):
        """Add the validators; turn resp into a 304 when the client's match."""
        payload = self.encode(resp.body)
        if resp.etag:
            resp.headers["ETag"] = etag_of(payload)
        if resp.last_modified:
            resp.headers["Last-Modified"] = resp.last_modified
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        hit = False
        if inm is not None and resp.etag:
            tags = [t.strip() for t in inm.split(",")]
            hit = resp.headers["ETag"] in tags or \
                "W/" + resp.headers["ETag"] in tags or "*" in tags
        elif ims is not None and resp.last_modified:
            try:
                hit = parsedate_to_datetime(ims) >= \
                    parsedate_to_datetime(resp.last_modified)
            except (TypeError, ValueError):
                hit = False
        if hit:
            resp.status = 304
            resp.body = None

    def rate_headers(self, budget):
        return {
            "X-RateLimit-Limit": str(budget.limit),
            "X-RateLimit-Remaining": str(budget.remaining),
            "X-RateLimit-Reset": str(budget.reset),
            "X-RateLimit-Used": str(budget.used),
            "X-RateLimit-Resource": "core",
        }

    def record(self, state, status):
        headers = {}
        for k, v in self.headers.items():
            if k.lower() != "authorization":
                headers[k] = v
        headers["Authorization"] = "present" if \
            self.headers.get("Authorization") else "absent"
        state.requests.append({"method": self.command, "path": self.path,
                               "headers": headers, "status": status,
                               "time": time.time()})
        log = self.server.log
        if log is not None:
            log.write("%s %s %s %d\n" % (
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                self.command, self.path, status))
            log.flush()

    # ---- writing responses

    @staticmethod
    def encode(body):
        if body is None:
            return b""
        if isinstance(body, bytes):
            return body
        return (json.dumps(body, indent=2) + "\n").encode("utf-8")

    def send(self, resp, extra):
        payload = self.encode(resp.body)
        self.send_response(resp.status)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Cache-Control": "private, max-age=60, s-maxage=60",
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Request-Id": self.request_id(),
        }
        headers.update(extra)
        headers.update(resp.headers)
        for k, v in headers.items():
            self.send_header(k, v)
        if resp.status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if resp.status not in (204, 304) and self.command != "HEAD":
            self.wfile.write(payload)

    @staticmethod
    def request_id():
        return "%04X:%04X:%06X:%07X:%08X" % (
            secrets.randbits(16), secrets.randbits(16), secrets.randbits(24),
            secrets.randbits(28), int(time.time()))

    def send_json(self, status, obj):
        self.send_raw(status, (json.dumps(obj) + "\n").encode("utf-8"),
                      "application/json; charset=utf-8")

    def send_raw(self, status, payload, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def forbid_no_agent(self):
        """GitHub's front end answers this one in HTTP/1.0 and closes."""
        payload = (b"Request forbidden by administrative rules. "
                   b"Please make sure your request has a User-Agent "
                   b"header (https://docs.github.com/en/rest/overview/"
                   b"resources-in-the-rest-api#user-agent-required). "
                   b"Check https://developer.github.com for other "
                   b"possible causes.\n")
        with self.server.state.lock:
            self.record(self.server.state, 403)
        self.wfile.write(b"HTTP/1.0 403 Forbidden\r\n"
                         b"Content-Type: text/html\r\n"
                         b"Content-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" %
                         (len(payload), payload))
        self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def parse_listen(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    return host.strip("[]") or "127.0.0.1", int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", type=parse_listen,
                    default=("127.0.0.1", 0), metavar="HOST:PORT")
    ap.add_argument("--token", action="append", required=True,
                    help="a token the double accepts (repeatable)")
    ap.add_argument("--login", default="octocat")
    ap.add_argument("--rate-limit", type=int, default=CORE_LIMIT,
                    help="core requests per hour per token")
    ap.add_argument("--log", help="append one line per API request here")
    opts = ap.parse_args()

    server = Server(opts.listen, Handler)
    server.state = State(opts.token, opts.login, opts.rate_limit)
    server.log = open(opts.log, "a", encoding="utf-8") if opts.log else None

    def stop(signum, frame):
        # shutdown() waits for serve_forever(), so it cannot run here.
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    host, port = server.server_address[:2]
    print("listening on %s:%d" % (host, port), flush=True)
    server.serve_forever()
    server.server_close()
    if server.log is not None:
        server.log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
