#!/usr/bin/python3
"""A test double of GitHub's REST API for ephemerd's tests.

It answers like api.github.com does (headers, rate limits, ETags, error
bodies), using the documented response examples in fixtures/ as the
templates of its answers.  Tests steer it through /_double/ endpoints,
which need no credentials.

    python3 ghdouble.py --listen 127.0.0.1:0 --token T [--token U]
        [--login octocat] [--rate-limit 5000] [--log FILE]
        [--app-id N --app-key-file PUBLIC_PEM]
        [--demo [--webhook-url URL --webhook-secret S]]

With port 0 the first line on stdout is "listening on 127.0.0.1:NNNN".

--demo builds a small world (the user of --login with 3 repositories,
the organization octo-org with 2; workflows with several runs-on forms,
some for GitHub-hosted runners only) and queues a job every 20 to 40 s
on a random repository, lasting 5 to 15 s, until it is stopped.  With
--webhook-url it also delivers the workflow_job webhooks there (and a
ping first), signed with --webhook-secret.  deploy/run-local.sh uses it
when no GitHub token is configured.

The world, for tests (control endpoints, JSON bodies, no credentials):
  POST /_double/repos {full_name, private?, archived?, disabled?,
       owner_type?: User|Organization, collaborator?, member?, admin?,
       workflows?: {"ci.yml": "<yaml>"}}  creates or replaces a repo
  POST /_double/workflow {repo, name, content}  one file (null deletes)
  GET  /_double/repos, /_double/runs, /_double/jobs, /_double/runners
  POST /_double/jobs {repo, labels, duration, run_id?, workflow?, name?}
       queues a job (in a new run unless run_id); once the world has
       repositories, a job on an unknown one is refused
  POST /_double/jobs/complete {id, conclusion?}  a queued job done
       elsewhere (a GitHub-hosted runner, a cancel)
Webhooks:
  POST /_double/webhook {url, secret, events?}  the target; sends a ping
  GET  /_double/deliveries[?body=1]  what was sent, the status answered,
       sent_at and answered_at (epoch seconds)
  POST /_double/webhook/redeliver {guid}  the same delivery again
  POST /_double/webhook/raw {body, event?, signature?}  any body; no
       signature key signs it, null sends none, a string is sent as is
GitHub App authentication (the openssl command checks signatures):
  POST /_double/app {app_id, public_key_pem, token_ttl?, installations:
       [{id, account, repositories?: ["owner/name", ...]}]}  the App;
       without repositories an installation reaches all of its
       account's.  --app-id and --app-key-file set the App at start
       (with one installation per account named in /_double/app later).
  GET  /_double/app  tokens issued (count, distinct), JWTs accepted and
       refused, expired tokens refused, JWTs sent off /app/
  A JWT (RS256, iat, exp at most 10 min later, iss the App id) works on
  /app/... only: /app/installations, /app/installations/{id}/access_tokens
  (201 ghs_... with expires_at, token_ttl s ahead, 3600 by default), and
  /orgs/{org}/installation, /users/{u}/installation,
  /repos/{o}/{r}/installation.  An installation token works on its
  account's repositories and organization, /installation/repositories;
  /user and /user/repos answer it 403, and once expired 401.
Faults and counting:
  POST /_double/fail {status, count, retry_after?, message?, path?,
       mode?: status|malformed}  (malformed: a 200 with half its JSON)
  POST /_double/delay {seconds, count}
  POST /_double/budget {remaining, reset_in?, status?: 403|429}
  GET  /_double/requests (method, path, status, charged, auth: pat,
       jwt, installation..., installation), POST
       /_double/requests/clear, GET /_double/budgets, POST /_double/reset

New endpoints are added with the @route decorator: a handler receives
the request context and the regex match, and returns a Response.
"""

import argparse
import base64
import contextlib
import copy
import functools
import hashlib
import hmac
import http.client as httpclient
import json
import os
import queue
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
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
SECONDARY_DOC_URL = RATE_DOC_URL + "#about-secondary-rate-limits"
CONTENTS_DOC_URL = ("https://docs.github.com/rest/repos/contents"
                    "#get-repository-content")
FIRST_REPO_ID = 700000001
FIRST_RUN_ID = 10000000001      # real run and job ids passed 2**32 long ago
FIRST_JOB_ID = 30000000001
FIRST_WORKFLOW_ID = 161335
FIRST_OWNER_ID = 100001
HOOK_TIMEOUT = 10               # GitHub gives a receiver 10 s to answer
RAW_TYPES = ("application/vnd.github.raw", "application/vnd.github.v3.raw")


@functools.lru_cache(maxsize=None)
def fixture_text(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as f:
        return f.read()


def load_fixture(name):
    return json.loads(fixture_text(name))


class Response:
    """What a handler returns; body is a JSON-able object, bytes or None."""

    def __init__(self, status, body=None, headers=None, charge=True,
                 etag=True, last_modified=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.charge = charge
        self.etag = etag            # True, False, or the ETag to send
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
        self.status = 403           # or 429, what exhaustion answers

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
        self.base_url = "http://127.0.0.1"     # set once the port is known
        self.outbox = queue.Queue()     # deliveries for the Deliverer
        self.generation = 0             # bumped by reset: drops old ones
        self.app = None                 # see set_app; kept by reset
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
        self.jobs_by_id = {}
        self.next_job_id = FIRST_JOB_ID
        self.owners = {}            # lower-case login -> owner entry
        self.next_owner_id = FIRST_OWNER_ID
        self.repos = {}             # lower-case full name -> repo entry
        self.next_repo_id = FIRST_REPO_ID
        self.workflow_ids = {}      # (repo key, file name) -> id
        self.runs = {}              # id -> run entry
        self.next_run_id = FIRST_RUN_ID
        self.hook = None            # the one webhook target, if any
        self.next_hook_id = 545206701
        self.deliveries = []        # what was sent, see Deliverer
        self.inst_tokens = {}       # token -> {installation, expires}
        self.app_stats = {"tokens": [], "jwt_ok": 0, "jwt_refused": 0,
                          "expired_refused": 0, "jwt_elsewhere": 0,
                          "token_on_app": 0}
        self.generation += 1
        self.owner(self.login, "User")

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
            job["runner_group_id"] = runner["runner_group_id"]
            job["started_at"] = time.time()
            runner["busy"] = True
            runner["job"] = job["id"]
            self.job_event(job, "in_progress")
            return job
        return None

    # -- the world: owners, repositories, runs

    def owner(self, login, kind):
        """The owner entry of login, created as kind when new."""
        key = login.lower()
        if key not in self.owners:
            oid = 1 if key == self.login.lower() else self.next_owner_id
            if oid != 1:
                self.next_owner_id += 1
            self.owners[key] = {"login": login, "id": oid, "type": kind}
        return self.owners[key]

    def repo(self, full_name):
        return self.repos.get(str(full_name).lower())

    def workflow_id(self, repo, name):
        key = (repo["full_name"].lower(), name)
        if key not in self.workflow_ids:
            self.workflow_ids[key] = FIRST_WORKFLOW_ID + \
                len(self.workflow_ids)
        return self.workflow_ids[key]

    def group_name(self, owner, group_id):
        if group_id is None:
            return None
        if group_id == 1:
            return "Default"
        for g in self.groups.get(owner.lower(), []):
            if g["id"] == group_id:
                return g["name"]
        return None

    def run_jobs(self, run_id):
        return [j for j in self.jobs if j["run_id"] == run_id]

    def run_status(self, run_id):
        """queued while every job waits, completed when all are done,
        in_progress in between; and the run's conclusion."""
        states = [j["status"] for j in self.run_jobs(run_id)]
        if all(x == "completed" for x in states):
            concl = [j["conclusion"] for j in self.run_jobs(run_id)]
            return "completed", "success" if \
                all(c in ("success", "skipped") for c in concl) else \
                "failure"
        if all(x == "queued" for x in states):
            return "queued", None
        return "in_progress", None

    def job_event(self, job, action):
        """Queue a workflow_job delivery for the webhook target."""
        if self.hook is None or not hook_wants(self.hook, "workflow_job"):
            return
        payload = workflow_job_payload(self, job, action)
        self.deliver("workflow_job", payload, action=action,
                     job_id=job["id"], repo=job["repo"])

    def deliver(self, event, payload, **info):
        """Record a delivery and hand it to the Deliverer; returns it."""
        hook = self.hook
        body = payload if isinstance(payload, bytes) else \
            json.dumps(payload, separators=(",", ":")).encode("utf-8")
        owner = self.owner_of(info.get("repo"))
        target = "organization" if owner is not None and \
            owner["type"] == "Organization" else "repository"
        headers = {
            "User-Agent": "GitHub-Hookshot/" + hook["agent"],
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": info.pop("guid", None) or
            str(uuid.uuid4()),
            "X-GitHub-Hook-ID": str(hook["id"]),
            "X-GitHub-Hook-Installation-Target-Type": target,
            "X-GitHub-Hook-Installation-Target-ID": str(
                owner["id"] if owner is not None else 1),
        }
        signature = info.pop("signature", True)
        if signature is True and hook["secret"]:
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(
                hook["secret"].encode(), body, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature-256"] = sign(hook["secret"], body)
        elif isinstance(signature, str):
            headers["X-Hub-Signature-256"] = signature
        record = {"id": len(self.deliveries) + 1,
                  "guid": headers["X-GitHub-Delivery"], "event": event,
                  "action": info.get("action"), "job_id": info.get("job_id"),
                  "repo": info.get("repo"), "url": hook["url"],
                  "hook_id": hook["id"],
                  "redelivery": bool(info.get("redelivery")),
                  "status_code": None, "error": None, "sent_at": None,
                  "answered_at": None, "headers": headers, "body": body,
                  "done": threading.Event()}
        self.deliveries.append(record)
        self.outbox.put((self.generation, record))
        return record

    def owner_of(self, full_name):
        if not full_name:
            return None
        return self.owners.get(str(full_name).split("/")[0].lower())

    def budget_for(self, token, client):
        if token is None:
            b = self.anon.setdefault(client, Budget(ANON_LIMIT))
        else:
            b = self.budgets.setdefault(token, Budget(self.rate_limit))
        b.roll()
        return b

    def take_fail(self, path):
        """The injected failure for this request, if any is pending and
        meant for this path (a substring of path and query)."""
        if self.fail is None or self.fail["count"] <= 0:
            return None
        if self.fail.get("path") and self.fail["path"] not in path:
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


# ---- the world: repositories, workflow files, runs and jobs -----------

def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def node_id(kind, number):
    return base64.b64encode(("0%d:%s%d" % (len(kind), kind, number))
                            .encode()).decode()


def blob_sha(content):
    """Git's blob id: sha1 of "blob <size>\\0" and the bytes."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def base64_lines(content):
    """GitHub's content encoding: base64 broken every 60 characters."""
    text = base64.b64encode(content).decode()
    return "".join(text[i:i + 60] + "\n" for i in range(0, len(text), 60))


def workflow_title(text, fallback):
    m = re.search(r"^name:[ \t]*(['\"]?)(.+?)\1[ \t]*$", text, re.M)
    return m.group(2) if m else fallback


@functools.lru_cache(maxsize=None)
def user_repos_template():
    return json.dumps(load_fixture("orgs-repos-list.openapi-example.json")[0])


def owner_json(state, owner, base):
    template = load_fixture("orgs-repos-list.openapi-example.json")[0]
    text = json.dumps(template["owner"])
    text = text.replace("https://api.github.com", base)
    text = text.replace("/octocat", "/" + owner["login"])
    out = json.loads(text)
    out.update(login=owner["login"], id=owner["id"],
               node_id=node_id("User" if owner["type"] == "User"
                               else "Organization", owner["id"]),
               type=owner["type"], site_admin=False)
    return out


def organization_json(owner, base):
    fixture = "webhook-workflow_job.completed.success.with-organization." \
        "payload.json"
    text = json.dumps(load_fixture(fixture)["organization"])
    text = text.replace("https://api.github.com", base)
    text = text.replace("/Octocoders", "/" + owner["login"])
    out = json.loads(text)
    out.update(login=owner["login"], id=owner["id"],
               node_id=node_id("Organization", owner["id"]),
               avatar_url="https://avatars.githubusercontent.com/u/%d?v=4" %
               owner["id"])
    return out


def repo_json(state, repo, base):
    """A repository object shaped like orgs-repos-list's items."""
    owner = state.owner(repo["owner"], repo["owner_type"])
    text = user_repos_template()
    text = text.replace("https://api.github.com", base)
    text = text.replace("octocat/Hello-World", repo["full_name"])
    text = text.replace("/octocat", "/" + owner["login"])
    out = json.loads(text)
    admin = repo["admin"]
    out.update(id=repo["id"], node_id=node_id("Repository", repo["id"]),
               name=repo["name"], full_name=repo["full_name"],
               owner=owner_json(state, owner, base),
               private=repo["private"], description=None, fork=False,
               default_branch=repo["default_branch"],
               archived=repo["archived"], disabled=repo["disabled"],
               visibility="private" if repo["private"] else "public",
               created_at=iso(repo["created"]),
               updated_at=iso(repo["pushed"]),
               pushed_at=iso(repo["pushed"]),
               permissions={"admin": admin, "maintain": admin,
                            "push": True, "triage": True, "pull": True})
    out.pop("security_and_analysis", None)
    return out


def affiliations(state, repo):
    """How the authenticated user reaches repo (GitHub's affiliation)."""
    out = set()
    if not repo["listed"]:
        return out
    if repo["owner"].lower() == state.login.lower():
        out.add("owner")
    if repo["owner_type"] == "Organization" and repo["member"]:
        out.add("organization_member")
    if repo["collaborator"]:
        out.add("collaborator")
    return out


def sort_repos(ctx, repos, default_sort):
    q = ctx.query
    key = q.get("sort", [default_sort])[0]
    if key not in ("created", "updated", "pushed", "full_name"):
        key = default_sort
    direction = q.get("direction", ["asc" if key == "full_name"
                                    else "desc"])[0]
    if key == "full_name":
        repos.sort(key=lambda r: (r["full_name"].lower(), r["id"]))
    elif key == "created":
        repos.sort(key=lambda r: (r["created"], r["id"]))
    else:
        repos.sort(key=lambda r: (r["pushed"], r["id"]))
    if direction == "desc":
        repos.reverse()
    return repos


def repo_list(ctx, repos):
    page, headers = paginate(ctx, repos)
    return Response(200, [repo_json(ctx.state, r, ctx.base_url)
                          for r in page], headers=headers)


@route("GET", "/user/repos")
def list_user_repos(ctx, m):
    q = ctx.query
    kind = q.get("type", [None])[0]
    visibility = q.get("visibility", [None])[0]
    affiliation = q.get("affiliation", [None])[0]
    if kind is not None and (visibility is not None or
                             affiliation is not None):
        return error(422, "If you specify visibility or affiliation, you "
                     "cannot specify type.")
    wanted = {"owner", "collaborator", "organization_member"}
    if affiliation is not None:
        wanted = {a.strip() for a in affiliation.split(",") if a.strip()}
        if not wanted <= {"owner", "collaborator", "organization_member"}:
            return error(422, "Validation Failed")
    if kind in ("owner",):
        wanted = {"owner"}
    elif kind == "member":
        wanted = {"collaborator", "organization_member"}
    elif kind in ("public", "private"):
        visibility = kind
    elif kind not in (None, "all"):
        return error(422, "Validation Failed")
    if visibility not in (None, "all", "public", "private"):
        return error(422, "Validation Failed")
    repos = [r for r in ctx.state.repos.values()
             if affiliations(ctx.state, r) & wanted and
             visibility in (None, "all",
                            "private" if r["private"] else "public")]
    return repo_list(ctx, sort_repos(ctx, repos, "full_name"))


@route("GET", ORG + "/repos")
def list_org_repos(ctx, m):
    org = ctx.state.owners.get(m.group("org").lower())
    if org is None or org["type"] != "Organization":
        return error(404, "Not Found")
    kind = ctx.query.get("type", ["all"])[0]
    if kind not in ("all", "public", "private", "forks", "sources",
                    "member"):
        return error(422, "Validation Failed")
    repos = [r for r in ctx.state.repos.values()
             if r["listed"] and r["owner"].lower() == org["login"].lower()
             and kind != "forks" and
             (kind not in ("public", "private") or
              kind == ("private" if r["private"] else "public"))]
    return repo_list(ctx, sort_repos(ctx, repos, "created"))


def find_repo(ctx, m):
    return ctx.state.repo("%s/%s" % (m.group("owner"), m.group("repo")))


@route("GET", REPO)
def get_repo(ctx, m):
    repo = find_repo(ctx, m)
    if repo is None:
        return error(404, "Not Found")
    return Response(200, repo_json(ctx.state, repo, ctx.base_url))


def content_entry(base, repo, path, sha, size, kind):
    full, branch = repo["full_name"], repo["default_branch"]
    api = "%s/repos/%s/contents/%s?ref=%s" % (base, full, path, branch)
    html = "https://github.com/%s/%s/%s/%s" % (
        full, "blob" if kind == "file" else "tree", branch, path)
    git = "%s/repos/%s/git/%s/%s" % (
        base, full, "blobs" if kind == "file" else "trees", sha)
    return {"name": path.rsplit("/", 1)[-1], "path": path, "sha": sha,
            "size": size, "url": api, "html_url": html, "git_url": git,
            "download_url": "https://raw.githubusercontent.com/%s/%s/%s" %
            (full, branch, path) if kind == "file" else None,
            "type": kind, "_links": {"self": api, "git": git, "html": html}}


def workflows_tree_sha(repo):
    listing = "".join("%s %s\n" % (name, wf["sha"]) for name, wf in
                      sorted(repo["workflows"].items()))
    return hashlib.sha1(b"tree " + listing.encode()).hexdigest()


def contents_not_found():
    return error(404, "Not Found", doc=CONTENTS_DOC_URL)


@route("GET", REPO + r"/contents/(?P<path>.*)")
def get_contents(ctx, m):
    repo = find_repo(ctx, m)
    path = urllib.parse.unquote(m.group("path")).rstrip("/")
    if repo is None or not repo["workflows"]:
        return contents_not_found()
    base = ctx.base_url
    if path == ".github":
        return Response(200, [content_entry(
            base, repo, ".github/workflows", workflows_tree_sha(repo), 0,
            "dir")])
    if path == ".github/workflows":
        return Response(200, [content_entry(
            base, repo, ".github/workflows/" + name, wf["sha"],
            len(wf["content"]), "file")
            for name, wf in sorted(repo["workflows"].items())])
    name = path[len(".github/workflows/"):] \
        if path.startswith(".github/workflows/") else None
    wf = repo["workflows"].get(name) if name else None
    if wf is None:
        return contents_not_found()
    accept = ctx.handler.headers.get("Accept", "")
    if any(t in accept for t in RAW_TYPES):
        return Response(200, wf["content"], etag='"%s"' % wf["sha"],
                        headers={"Content-Type": "application/vnd.github."
                                 "raw; charset=utf-8"})
    entry = content_entry(base, repo, path, wf["sha"], len(wf["content"]),
                          "file")
    body = {"type": "file", "encoding": "base64", "size": entry["size"],
            "name": entry["name"], "path": path,
            "content": base64_lines(wf["content"]), "sha": wf["sha"]}
    for k in ("url", "git_url", "html_url", "download_url", "_links"):
        body[k] = entry[k]
    return Response(200, body)


@route("GET", REPO + "/actions/workflows")
def list_workflows(ctx, m):
    repo = find_repo(ctx, m)
    if repo is None:
        return error(404, "Not Found")
    base, full = ctx.base_url, repo["full_name"]
    items = []
    for name, wf in sorted(repo["workflows"].items()):
        wid = ctx.state.workflow_id(repo, name)
        items.append({
            "id": wid, "node_id": node_id("Workflow", wid),
            "name": workflow_title(wf["content"].decode("utf-8",
                                                        "replace"),
                                   ".github/workflows/" + name),
            "path": ".github/workflows/" + name, "state": "active",
            "created_at": iso(repo["created"]),
            "updated_at": iso(wf["changed"]),
            "url": "%s/repos/%s/actions/workflows/%d" % (base, full, wid),
            "html_url": "https://github.com/%s/blob/%s/.github/workflows/"
            "%s" % (full, repo["default_branch"], name),
            "badge_url": "https://github.com/%s/workflows/%s/badge.svg" %
            (full, urllib.parse.quote(name))})
    page, headers = paginate(ctx, items)
    return Response(200, {"total_count": len(items), "workflows": page},
                    headers=headers)


def job_json(state, job, base):
    """A job as GET .../actions/jobs/{id} and workflow_job payloads have
    it; runner fields stay null while it is queued."""
    run = state.runs[job["run_id"]]
    full = job["repo"]
    runner_group = job.get("runner_group_id")
    return {
        "id": job["id"], "run_id": run["id"],
        "run_url": "%s/repos/%s/actions/runs/%d" % (base, full, run["id"]),
        "run_attempt": 1, "node_id": node_id("CheckRun", job["id"]),
        "head_sha": run["head_sha"], "head_branch": run["head_branch"],
        "url": "%s/repos/%s/actions/jobs/%d" % (base, full, job["id"]),
        "html_url": "https://github.com/%s/actions/runs/%d/job/%d" %
        (full, run["id"], job["id"]),
        "status": job["status"], "conclusion": job["conclusion"],
        "started_at": iso(job["started_at"] or job["created_at"]),
        "created_at": iso(job["created_at"]),
        "completed_at": iso(job["completed_at"])
        if job["completed_at"] else None,
        "name": job["name"], "steps": [],
        "check_run_url": "%s/repos/%s/check-runs/%d" % (base, full,
                                                        job["id"]),
        "labels": list(job["labels"]),
        "runner_id": job["runner_id"], "runner_name": job["runner_name"],
        "runner_group_id": runner_group,
        "runner_group_name": state.group_name(full.split("/")[0],
                                              runner_group),
        "workflow_name": run["name"],
    }


def run_json(state, run, base):
    """A workflow run shaped like actions-runs-list's items."""
    repo = state.repo(run["repo"])
    out = copy.deepcopy(load_fixture(
        "actions-runs-list.openapi-example.json")["workflow_runs"][0])
    status, conclusion = state.run_status(run["id"])
    jobs = state.run_jobs(run["id"])
    changed = max([run["created"]] +
                  [t for j in jobs for t in (j["started_at"],
                                             j["completed_at"]) if t])
    api = "%s/repos/%s/actions/runs/%d" % (base, repo["full_name"],
                                           run["id"])
    wid = state.workflow_id(repo, run["workflow"])
    actor = owner_json(state, state.owner(state.login, "User"), base)
    rj = repo_json(state, repo, base)
    out.update(
        id=run["id"], name=run["name"], node_id=node_id("WorkflowRun",
                                                        run["id"]),
        check_suite_id=run["id"] + 1, check_suite_node_id=node_id(
            "CheckSuite", run["id"] + 1),
        head_branch=run["head_branch"], head_sha=run["head_sha"],
        path=".github/workflows/%s@%s" % (run["workflow"],
                                          run["head_branch"]),
        run_number=run["run_number"], event="push",
        display_title=run["title"], status=status, conclusion=conclusion,
        workflow_id=wid, url=api,
        html_url="https://github.com/%s/actions/runs/%d" %
        (repo["full_name"], run["id"]),
        created_at=iso(run["created"]), updated_at=iso(changed),
        actor=actor, triggering_actor=actor,
        run_started_at=iso(run["created"]), jobs_url=api + "/jobs",
        logs_url=api + "/logs", artifacts_url=api + "/artifacts",
        cancel_url=api + "/cancel", rerun_url=api + "/rerun",
        check_suite_url="%s/repos/%s/check-suites/%d" % (
            base, repo["full_name"], run["id"] + 1),
        workflow_url="%s/repos/%s/actions/workflows/%d" % (
            base, repo["full_name"], wid),
        repository=rj, head_repository=rj)
    out["head_commit"].update(id=run["head_sha"], tree_id=run["head_sha"],
                              timestamp=iso(run["created"]),
                              message=run["title"])
    return out


RUN_STATES = ("queued", "in_progress", "completed")
CONCLUSIONS = ("success", "failure", "neutral", "cancelled", "skipped",
               "timed_out", "action_required", "stale")


@route("GET", REPO + "/actions/runs")
def list_runs(ctx, m):
    repo = find_repo(ctx, m)
    if repo is None:
        return error(404, "Not Found")
    wanted = ctx.query.get("status", [None])[0]
    runs = []
    for run in ctx.state.runs.values():
        if run["repo"].lower() != repo["full_name"].lower():
            continue
        status, conclusion = ctx.state.run_status(run["id"])
        if wanted is None or wanted == status or wanted == conclusion:
            runs.append(run)
    runs.sort(key=lambda r: (r["created"], r["id"]), reverse=True)
    page, headers = paginate(ctx, runs)
    return Response(200, {"total_count": len(runs), "workflow_runs": [
        run_json(ctx.state, r, ctx.base_url) for r in page]},
        headers=headers)


def find_run(ctx, m):
    repo = find_repo(ctx, m)
    run = ctx.state.runs.get(int(m.group("run_id")))
    if repo is None or run is None or \
            run["repo"].lower() != repo["full_name"].lower():
        return None
    return run


@route("GET", REPO + r"/actions/runs/(?P<run_id>\d+)")
def get_run(ctx, m):
    run = find_run(ctx, m)
    if run is None:
        return error(404, "Not Found")
    return Response(200, run_json(ctx.state, run, ctx.base_url))


def list_run_jobs(ctx, m):
    run = find_run(ctx, m)
    if run is None or m.groupdict().get("attempt") not in (None, "1"):
        return error(404, "Not Found")
    jobs = sorted(ctx.state.run_jobs(run["id"]), key=lambda j: j["id"])
    page, headers = paginate(ctx, jobs)
    return Response(200, {"total_count": len(jobs), "jobs": [
        job_json(ctx.state, j, ctx.base_url) for j in page]},
        headers=headers)


route("GET", REPO + r"/actions/runs/(?P<run_id>\d+)/jobs")(list_run_jobs)
route("GET", REPO + r"/actions/runs/(?P<run_id>\d+)/attempts/"
      r"(?P<attempt>\d+)/jobs")(list_run_jobs)


@route("GET", REPO + r"/actions/jobs/(?P<job_id>\d+)")
def get_job(ctx, m):
    repo = find_repo(ctx, m)
    job = ctx.state.jobs_by_id.get(int(m.group("job_id")))
    if repo is None or job is None or \
            job["repo"].lower() != repo["full_name"].lower():
        return error(404, "Not Found")
    return Response(200, job_json(ctx.state, job, ctx.base_url))


# ---- webhooks -----------------------------------------------------------

def sign(secret, body):
    """X-Hub-Signature-256: HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body,
                                hashlib.sha256).hexdigest()


def hook_wants(hook, event):
    return "*" in hook["events"] or event in hook["events"]


def workflow_job_payload(state, job, action):
    base = state.base_url
    repo = state.repo(job["repo"])
    owner = state.owner(repo["owner"], repo["owner_type"])
    payload = {"action": action,
               "workflow_job": job_json(state, job, base),
               "repository": repo_json(state, repo, base)}
    if owner["type"] == "Organization":
        payload["organization"] = organization_json(owner, base)
    payload["sender"] = owner_json(state, state.owner(state.login, "User"),
                                   base)
    return payload


def ping_payload(state, hook):
    base = state.base_url
    payload = load_fixture("webhook-ping.with-organization.payload.json")
    url = "%s/user/hooks/%d" % (base, hook["id"])
    payload["zen"] = "Keep it logically awesome."
    payload["hook_id"] = hook["id"]
    payload["hook"] = {
        "type": "Organization", "id": hook["id"], "name": "web",
        "active": True, "events": list(hook["events"]),
        "config": {"content_type": "json", "insecure_ssl": "0",
                   "url": hook["url"]},
        "updated_at": iso(hook["created"]), "created_at": iso(hook["created"]),
        "url": url, "ping_url": url + "/pings",
        "deliveries_url": url + "/deliveries"}
    if hook["secret"]:
        payload["hook"]["config"]["secret"] = "********"
    del payload["organization"]
    payload["sender"] = owner_json(state, state.owner(state.login, "User"),
                                   base)
    return payload


class Deliverer(threading.Thread):
    """Sends the queued webhook deliveries one by one, never holding the
    state lock while it waits for the receiver."""

    def __init__(self, state):
        super().__init__(name="deliverer", daemon=True)
        self.state = state

    def run(self):
        while True:
            generation, record = self.state.outbox.get()
            if record is None:
                return
            with self.state.lock:
                stale = generation != self.state.generation
            if not stale:
                self.send(record)
            record["done"].set()

    def send(self, record):
        url = urllib.parse.urlsplit(record["url"])
        path = (url.path or "/") + ("?" + url.query if url.query else "")
        status, problem = None, None
        sent = time.time()
        conn = httpclient.HTTPConnection(url.hostname, url.port or 80,
                                         timeout=HOOK_TIMEOUT)
        try:
            conn.request("POST", path, body=record["body"],
                         headers=record["headers"])
            answer = conn.getresponse()
            answer.read()
            status = answer.status
        except (OSError, httpclient.HTTPException) as e:
            problem = "%s: %s" % (type(e).__name__, e)
        finally:
            conn.close()
        with self.state.lock:
            record.update(sent_at=sent, answered_at=time.time(),
                          status_code=status, error=problem)


def public_delivery(record, with_body=False):
    out = {k: v for k, v in record.items() if k not in ("body", "done")}
    if with_body:
        out["body"] = record["body"].decode("utf-8", "replace")
    return out


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
        job = state.jobs_by_id[r["job"]]
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
    job = state.jobs_by_id[r["job"]]
    job["status"] = "completed"
    job["conclusion"] = str(args.get("conclusion", "success"))
    job["completed_at"] = time.time()
    state.job_event(job, "completed")
    # An ephemeral runner is deregistered once its job is done, as
    # GitHub does: it leaves the runner list at once.
    del state.runners[r["id"]]
    return 200, {"ok": True, "removed": r["id"]}


# ---- control endpoints: building the world --------------------------------

class ControlError(Exception):
    """A control request the double refuses, with its HTTP status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


FULL_NAME = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
WORKFLOW_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def flag(args, key, default=False):
    value = args.get(key, default)
    if not isinstance(value, bool):
        raise ControlError(400, "%s must be true or false" % key)
    return value


def workflow_entry(name, text, now):
    if not isinstance(name, str) or not WORKFLOW_NAME.match(name):
        raise ControlError(400, "bad workflow file name %r" % (name,))
    if not isinstance(text, str):
        raise ControlError(400, "workflow %s must be YAML text" % name)
    content = text.encode("utf-8")
    return {"content": content, "sha": blob_sha(content), "changed": now}


def head_sha(repo):
    listing = "".join("%s %s\n" % (n, wf["sha"])
                      for n, wf in sorted(repo["workflows"].items()))
    return hashlib.sha1(("%s\n%s" % (repo["full_name"], listing))
                        .encode()).hexdigest()


def put_workflows(repo, workflows, now):
    """Install workflows (name -> text, None deletes); a changed file
    gets a new sha and moves pushed_at."""
    changed = False
    for name, text in sorted(workflows.items()):
        old = repo["workflows"].get(name)
        if text is None:
            changed |= repo["workflows"].pop(name, None) is not None
            continue
        wf = workflow_entry(name, text, now)
        if old is not None and old["sha"] == wf["sha"]:
            continue
        repo["workflows"][name] = wf
        changed = True
    if changed:
        repo["pushed"] = now
        repo["head_sha"] = head_sha(repo)


def new_repo(state, full_name, owner_type, now, listed=True):
    login, name = full_name.split("/")
    if login.lower() == state.login.lower() and owner_type != "User":
        raise ControlError(422, "%s is the authenticated user, not an "
                           "organization" % login)
    owner = state.owner(login, owner_type)
    if owner["type"] != owner_type:
        raise ControlError(422, "%s is already a%s %s" % (
            login, "n" if owner["type"][0] in "AEIOU" else "",
            owner["type"]))
    repo = {"id": state.next_repo_id, "owner": owner["login"],
            "name": name, "full_name": "%s/%s" % (owner["login"], name),
            "owner_type": owner_type, "private": False, "archived": False,
            "disabled": False, "collaborator": False, "member": True,
            "admin": True, "listed": listed, "default_branch": "main",
            "workflows": {}, "created": now, "pushed": now,
            "next_run_number": 1}
    repo["head_sha"] = head_sha(repo)
    state.next_repo_id += 1
    state.repos[full_name.lower()] = repo
    return repo


def put_repo(state, args):
    full_name = args.get("full_name")
    if not isinstance(full_name, str) or not FULL_NAME.match(full_name):
        raise ControlError(400, "full_name must be OWNER/NAME")
    owner_type = args.get("owner_type", "User")
    if owner_type not in ("User", "Organization"):
        raise ControlError(400, "owner_type is User or Organization")
    workflows = args.get("workflows", {})
    if not isinstance(workflows, dict):
        raise ControlError(400, "workflows maps file names to YAML text")
    flags = {key: flag(args, key, default) for key, default in (
        ("private", False), ("archived", False), ("disabled", False),
        ("collaborator", False), ("member", True), ("admin", True))}
    for name, text in workflows.items():
        workflow_entry(name, text, 0)
    now = time.time()
    repo = state.repo(full_name)
    if repo is None:
        repo = new_repo(state, full_name, owner_type, now)
    elif repo["owner_type"] != owner_type:
        raise ControlError(422, "%s is owned by a%s %s" % (
            full_name, "n" if repo["owner_type"][0] in "AEIOU" else "",
            repo["owner_type"]))
    repo["listed"] = True
    repo.update(flags)
    # Replacing a repository replaces its whole tree of workflows.
    gone = {n: None for n in repo["workflows"] if n not in workflows}
    put_workflows(repo, dict(gone, **workflows), now)
    return public_repo(repo)


def put_workflow(state, args):
    repo = state.repo(args.get("repo"))
    if repo is None:
        raise ControlError(404, "no repository %r" % (args.get("repo"),))
    if "name" not in args or "content" not in args:
        raise ControlError(400, "name and content are required")
    put_workflows(repo, {args["name"]: args["content"]}, time.time())
    return public_repo(repo)


def public_repo(repo):
    out = {k: v for k, v in repo.items()
           if k not in ("workflows", "next_run_number")}
    out["workflows"] = {n: wf["sha"] for n, wf in
                        sorted(repo["workflows"].items())}
    return out


def job_repo(state, name):
    """The repository a queued job belongs to.  A double whose world was
    never built (the manual-mode tests) takes any OWNER/NAME as a repo of
    its own; once repositories exist, an unknown one is an error."""
    if not isinstance(name, str) or not FULL_NAME.match(name):
        raise ControlError(400, "repo must be OWNER/NAME")
    repo = state.repo(name)
    if repo is not None:
        return repo
    if any(r["listed"] for r in state.repos.values()):
        raise ControlError(404, "no repository %s in the double's world" %
                           name)
    owner = state.owners.get(name.split("/")[0].lower())
    return new_repo(state, name, owner["type"] if owner else "User",
                    time.time(), listed=False)


def job_run(state, repo, args, now):
    run_id = args.get("run_id")
    if run_id is not None:
        run = state.runs.get(run_id) if isinstance(run_id, int) else None
        if run is None or run["repo"].lower() != \
                repo["full_name"].lower():
            raise ControlError(404, "no run %r in %s" %
                               (run_id, repo["full_name"]))
        return run
    workflow = args.get("workflow") or \
        (sorted(repo["workflows"])[0] if repo["workflows"] else "ci.yml")
    wf = repo["workflows"].get(workflow)
    text = wf["content"].decode("utf-8", "replace") if wf else ""
    run = {"id": state.next_run_id, "repo": repo["full_name"],
           "workflow": workflow,
           "name": workflow_title(text, ".github/workflows/" + workflow),
           "title": "Update %s" % workflow,
           "run_number": repo["next_run_number"],
           "head_sha": repo["head_sha"],
           "head_branch": repo["default_branch"], "created": now}
    state.next_run_id += 1
    repo["next_run_number"] += 1
    state.runs[run["id"]] = run
    return run


def queue_job(state, args):
    repo = job_repo(state, args.get("repo"))
    labels = args.get("labels", ["self-hosted"])
    if not isinstance(labels, list):
        labels = [str(labels)]
    now = time.time()
    run = job_run(state, repo, args, now)
    job = {"id": state.next_job_id, "repo": repo["full_name"],
           "run_id": run["id"], "name": str(args.get("name", "build")),
           "labels": [str(x) for x in labels],
           "duration": float(args.get("duration", 1)),
           "status": "queued", "conclusion": None,
           "runner_name": None, "runner_id": None, "runner_group_id": None,
           "created_at": now, "started_at": None, "completed_at": None}
    state.next_job_id += 1
    state.jobs.append(job)
    state.jobs_by_id[job["id"]] = job
    state.job_event(job, "queued")
    return job


def finish_job(state, args):
    """A queued job done without our runners (a hosted runner took it,
    or it was cancelled)."""
    job = state.jobs_by_id.get(args.get("id"))
    if job is None:
        raise ControlError(404, "no job %r" % (args.get("id"),))
    if job["status"] != "queued":
        raise ControlError(409, "job %d is %s" % (job["id"],
                                                  job["status"]))
    job["status"] = "completed"
    job["conclusion"] = str(args.get("conclusion", "success"))
    job["completed_at"] = time.time()
    state.job_event(job, "completed")
    return job


def set_hook(state, args):
    url = args.get("url")
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "http" or not parts.hostname:
        raise ControlError(400, "url must be an http:// URL")
    secret = args.get("secret", "")
    events = args.get("events", ["workflow_job"])
    if not isinstance(secret, str) or not isinstance(events, list):
        raise ControlError(400, "secret is a string, events a list")
    state.hook = {"id": state.next_hook_id, "url": url, "secret": secret,
                  "events": [str(e) for e in events],
                  "agent": secrets.token_hex(4)[:7], "created": time.time()}
    state.next_hook_id += 1
    ping = state.deliver("ping", ping_payload(state, state.hook))
    return {"hook_id": state.hook["id"], "ping": ping["guid"]}


def redeliver(state, args):
    """Send a delivery again, as GitHub does: same GUID, same body."""
    for old in reversed(state.deliveries):
        if old["guid"] == args.get("guid"):
            break
    else:
        raise ControlError(404, "no delivery %r" % (args.get("guid"),))
    if state.hook is None:
        raise ControlError(409, "no webhook is configured")
    return state.deliver(old["event"], old["body"], guid=old["guid"],
                         action=old["action"], job_id=old["job_id"],
                         repo=old["repo"], redelivery=True)


def deliver_raw(state, args):
    if state.hook is None:
        raise ControlError(409, "no webhook is configured")
    body = args.get("body")
    if not isinstance(body, str):
        raise ControlError(400, "body must be a string")
    signature = args["signature"] if "signature" in args else True
    if signature is not None and not isinstance(signature, (str, bool)):
        raise ControlError(400, "signature is a string or null")
    return state.deliver(str(args.get("event", "workflow_job")),
                         body.encode("utf-8"), signature=signature,
                         repo=args.get("repo"))


def set_budget(state, args):
    remaining = args["remaining"]
    reset_in = args.get("reset_in")
    status = int(args.get("status", 403))
    if status not in (403, 429):
        raise ControlError(400, "status is 403 or 429")
    for t in state.tokens:
        b = state.budget_for(t, None)
        b.used = max(b.limit - int(remaining), 0)
        b.status = status
        if reset_in is not None:
            b.reset = int(time.time() + float(reset_in))
    return {"ok": True}


def set_fail(state, args):
    mode = args.get("mode", "status")
    if mode not in ("status", "malformed"):
        raise ControlError(400, "mode is status or malformed")
    state.fail = {"status": int(args.get("status", 500)),
                  "count": int(args.get("count", 1)),
                  "message": args.get("message"),
                  "retry_after": args.get("retry_after"),
                  "mode": mode, "path": args.get("path")}
    return {"ok": True}


def wait_deliveries(records, timeout):
    """True once each record was answered (or failed)."""
    deadline = time.monotonic() + timeout
    for record in records:
        if not record["done"].wait(max(deadline - time.monotonic(), 0)):
            return False
    return True


# ---- GitHub Apps ------------------------------------------------------

APP_DOC_URL = "https://docs.github.com/rest/apps/apps"
JWT_UNDECODABLE = "A JSON web token could not be decoded"
JWT_MAX_LIFETIME = 600          # GitHub refuses exp more than 10 min ahead
JWT_SKEW = 60                   # and tolerates this much clock difference
INTEGRATION_403 = "Resource not accessible by integration"
# Where a JWT is the credential, and the only one.
JWT_PATHS = re.compile(r"^/app(/.*)?$|^/(orgs|users)/[^/]+/installation$|"
                       r"^/repos/[^/]+/[^/]+/installation$")
ACCOUNT_PATH = re.compile(r"^/(repos|orgs|users)/([^/]+)(?:/([^/]+))?")


def b64url_decode(text):
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4))
                                    .encode("ascii"))


class App:
    """A GitHub App: its id, its public key (in a file, for openssl),
    its installations and how long the tokens it issues live."""

    def __init__(self, app_id, public_pem, installations=(),
                 token_ttl=3600):
        self.app_id = int(app_id)
        self.token_ttl = float(token_ttl)
        if self.app_id <= 0 or self.token_ttl <= 0:
            raise ControlError(400, "app_id and token_ttl must be positive")
        fd, self.key_file = tempfile.mkstemp(prefix="ghdouble-app-",
                                             suffix=".pem")
        with os.fdopen(fd, "w") as f:
            f.write(public_pem)
        r = subprocess.run(["openssl", "pkey", "-pubin", "-noout", "-in",
                            self.key_file], capture_output=True)
        if r.returncode != 0:
            self.close()
            raise ControlError(400, "public_key_pem is not a public key")
        self.installations = {}
        for inst in installations:
            repos = inst.get("repositories")
            self.installations[int(inst["id"])] = {
                "id": int(inst["id"]), "account": str(inst["account"]),
                "repositories": None if repos is None else
                {str(r).lower() for r in repos}}

    def close(self):
        with contextlib.suppress(OSError):
            os.unlink(self.key_file)

    def signed(self, data, signature):
        with tempfile.NamedTemporaryFile(prefix="ghdouble-sig-") as f:
            f.write(signature)
            f.flush()
            r = subprocess.run(["openssl", "dgst", "-sha256", "-verify",
                                self.key_file, "-signature", f.name],
                               input=data, capture_output=True)
        return r.returncode == 0

    def check_jwt(self, token, now):
        """None if token is a valid JWT of this App, else GitHub's
        message."""
        parts = token.split(".")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except (IndexError, ValueError, UnicodeDecodeError):
            return JWT_UNDECODABLE
        if len(parts) != 3 or not isinstance(header, dict) or \
                not isinstance(claims, dict) or \
                header.get("alg") != "RS256" or \
                not self.signed((parts[0] + "." + parts[1]).encode(),
                                signature):
            return JWT_UNDECODABLE
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or iat > now + JWT_SKEW:
            return ("'Issued at' claim ('iat') must be an Integer "
                    "representing the time that the assertion was issued")
        if not isinstance(exp, int) or exp <= now:
            return ("'Expiration time' claim ('exp') must be a numeric "
                    "value representing the future time at which the "
                    "assertion expires")
        if exp - iat > JWT_MAX_LIFETIME + JWT_SKEW or \
                exp > now + JWT_MAX_LIFETIME:
            return "'Expiration time' claim ('exp') is too far in the future"
        if str(claims.get("iss")) != str(self.app_id):
            return "Integration not found"
        return None

    def reaches(self, inst, path):
        """Whether an installation's token may act on path."""
        m = ACCOUNT_PATH.match(path)
        if m is None:
            return True
        if m.group(2).lower() != inst["account"].lower():
            return False
        if m.group(1) == "repos" and inst["repositories"] is not None:
            full = "%s/%s" % (m.group(2), m.group(3) or "")
            return full.lower() in inst["repositories"]
        return True


def looks_like_jwt(token):
    return token.startswith("eyJ") and token.count(".") == 2


def authenticate(state, token):
    """Who a request is: a dict with kind (None, "bad", "pat", "jwt",
    "jwt-bad", "installation", "expired") and the budget key."""
    if token is None:
        return {"kind": None, "key": None}
    if token is False:
        return {"kind": "bad", "key": None}
    if token in state.tokens:
        return {"kind": "pat", "key": token}
    if token in state.inst_tokens:
        t = state.inst_tokens[token]
        if time.time() >= t["expires"]:
            state.app_stats["expired_refused"] += 1
            return {"kind": "expired", "key": None}
        return {"kind": "installation", "key": "inst:%d" % t["installation"],
                "installation": t["installation"]}
    if state.app is not None and looks_like_jwt(token):
        message = state.app.check_jwt(token, int(time.time()))
        if message is not None:
            state.app_stats["jwt_refused"] += 1
            return {"kind": "jwt-bad", "key": None, "message": message}
        state.app_stats["jwt_ok"] += 1
        return {"kind": "jwt", "key": "app:%d" % state.app.app_id}
    return {"kind": "bad", "key": None}


def app_refusal(state, path, auth):
    """The answer GitHub gives a credential that does not fit path, or
    None."""
    kind = auth["kind"]
    if JWT_PATHS.match(path):
        if kind == "jwt":
            return None
        if kind == "installation":
            state.app_stats["token_on_app"] += 1
        return error(401, JWT_UNDECODABLE, doc=APP_DOC_URL,
                     with_status=False)
    if kind == "jwt":
        state.app_stats["jwt_elsewhere"] += 1
        return error(403, INTEGRATION_403, doc=APP_DOC_URL)
    if kind == "installation":
        inst = state.app.installations.get(auth["installation"]) \
            if state.app is not None else None
        if inst is None:
            return error(401, "Bad credentials", with_status=False)
        if path == "/user" or path.startswith("/user/"):
            return error(403, INTEGRATION_403, doc="https://docs.github.com/"
                         "rest/users/users#get-the-authenticated-user")
        if not state.app.reaches(inst, path):
            return error(404, "Not Found")
    if kind == "pat" and path == "/installation/repositories":
        return error(403, "You must authenticate with an installation "
                     "access token in order to list repositories for an "
                     "installation.", doc=APP_DOC_URL)
    return None


def installation_json(state, inst, base):
    owner = state.owners.get(inst["account"].lower())
    if owner is not None:
        account = owner_json(state, owner, base)
    else:
        account = {"login": inst["account"], "id": 0, "type": "User"}
    return {
        "id": inst["id"],
        "account": account,
        "repository_selection": "all" if inst["repositories"] is None
        else "selected",
        "access_tokens_url": "%s/app/installations/%d/access_tokens" % (
            base, inst["id"]),
        "repositories_url": base + "/installation/repositories",
        "html_url": "https://github.com/settings/installations/%d" %
        inst["id"],
        "app_id": state.app.app_id,
        "app_slug": "ephemerd-double",
        "target_id": account["id"],
        "target_type": account["type"],
        "permissions": {"actions": "read", "administration": "write",
                        "contents": "read", "metadata": "read",
                        "organization_self_hosted_runners": "write"},
        "events": ["workflow_job"],
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": None,
        "suspended_at": None,
    }


@route("GET", "/app/installations")
def list_installations(ctx, m):
    insts = sorted(ctx.state.app.installations.values(),
                   key=lambda i: i["id"])
    page, headers = paginate(ctx, insts)
    return Response(200, [installation_json(ctx.state, i, ctx.base_url)
                          for i in page], headers=headers)


def installation_answer(ctx, inst):
    if inst is None:
        return error(404, "Not Found", doc=APP_DOC_URL)
    return Response(200, installation_json(ctx.state, inst, ctx.base_url))


@route("GET", r"/app/installations/(?P<id>[0-9]+)")
def get_installation(ctx, m):
    return installation_answer(
        ctx, ctx.state.app.installations.get(int(m.group("id"))))


def installation_of(state, account, full_name=None):
    for inst in sorted(state.app.installations.values(),
                       key=lambda i: i["id"]):
        if inst["account"].lower() != account.lower():
            continue
        if full_name is None or inst["repositories"] is None or \
                full_name.lower() in inst["repositories"]:
            return inst
    return None


@route("GET", ORG + "/installation")
def get_org_installation(ctx, m):
    return installation_answer(ctx, installation_of(ctx.state,
                                                    m.group("org")))


@route("GET", r"/users/(?P<user>[A-Za-z0-9-]+)/installation")
def get_user_installation(ctx, m):
    return installation_answer(ctx, installation_of(ctx.state,
                                                    m.group("user")))


@route("GET", REPO + "/installation")
def get_repo_installation(ctx, m):
    full = "%s/%s" % (m.group("owner"), m.group("repo"))
    return installation_answer(ctx, installation_of(
        ctx.state, m.group("owner"), full))


@route("POST", r"/app/installations/(?P<id>[0-9]+)/access_tokens")
def create_installation_token(ctx, m):
    state = ctx.state
    inst = state.app.installations.get(int(m.group("id")))
    if inst is None:
        return error(404, "Not Found", doc=APP_DOC_URL)
    token = "ghs_" + "".join(secrets.choice(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        for _ in range(36))
    expires = time.time() + state.app.token_ttl
    state.inst_tokens[token] = {"installation": inst["id"],
                                "expires": expires}
    state.app_stats["tokens"].append({"token": token,
                                      "installation": inst["id"],
                                      "issued": time.time(),
                                      "expires": expires})
    body = {"token": token, "expires_at": iso(expires),
            "permissions": installation_json(state, inst,
                                             ctx.base_url)["permissions"],
            "repository_selection": "all" if inst["repositories"] is None
            else "selected"}
    return Response(201, body, etag=False)


@route("GET", "/installation/repositories")
def list_installation_repos(ctx, m):
    state = ctx.state
    inst = state.app.installations[ctx.auth["installation"]]
    repos = [r for r in state.repos.values()
             if r["listed"] and state.app.reaches(inst, "/repos/" +
                                                  r["full_name"])]
    repos.sort(key=lambda r: (r["full_name"].lower(), r["id"]))
    page, headers = paginate(ctx, repos)
    body = {"total_count": len(repos),
            "repositories": [repo_json(state, r, ctx.base_url)
                             for r in page],
            "repository_selection": "all" if inst["repositories"] is None
            else "selected"}
    return Response(200, body, headers=headers)


def set_app(state, args):
    if state.app is not None:
        state.app.close()
        state.app = None
    state.app = App(args["app_id"], str(args["public_key_pem"]),
                    args.get("installations", []),
                    args.get("token_ttl", 3600))
    return {"ok": True}


def app_report(state):
    tokens = state.app_stats["tokens"]
    return dict(state.app_stats, tokens=list(tokens),
                issued=len(tokens),
                distinct=len({t["token"] for t in tokens}))


# ---- the server -------------------------------------------------------

class Context:
    def __init__(self, handler, state, path, query, auth, budget, body):
        self.handler = handler
        self.state = state
        self.path = path
        self.query = query
        self.auth = auth
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
        self.auth = None
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
            self.control(url.path, urllib.parse.parse_qs(url.query), body)
            return
        self.api(url, body)

    # ---- control endpoints, for tests; no credentials needed

    def control(self, path, query, body):
        state = self.server.state
        try:
            args = json.loads(body.decode("utf-8") or "{}")
            if not isinstance(args, dict):
                raise ValueError("body must be an object")
        except ValueError as e:
            self.send_json(400, {"error": "bad JSON: %s" % e})
            return
        try:
            with state.lock:
                result = self.control_locked(state, path, query, args)
            if isinstance(result, dict) and "done" in result:
                result = self.control_wait(state, result, args)
        except ControlError as e:
            self.send_json(e.status, {"error": str(e)})
            return
        except (KeyError, TypeError, ValueError) as e:
            self.send_json(400, {"error": "bad arguments: %s: %s" %
                                 (type(e).__name__, e)})
            return
        if result is None:
            self.send_json(404, {"error": "no such control endpoint"})
        else:
            self.send_json(200, result)

    @staticmethod
    def control_wait(state, record, args):
        """A delivery a test sent by hand: answer once it was answered,
        unless the test asked not to wait."""
        if args.get("wait", True):
            wait_deliveries([record], HOOK_TIMEOUT + 5)
        with state.lock:
            return public_delivery(record)

    def control_locked(self, state, path, query, args):
        cmd = self.command
        posts = {
            "/_double/fail": set_fail,
            "/_double/budget": set_budget,
            "/_double/repos": put_repo,
            "/_double/workflow": put_workflow,
            "/_double/jobs": queue_job,
            "/_double/jobs/complete": finish_job,
            "/_double/webhook": set_hook,
            "/_double/webhook/redeliver": redeliver,
            "/_double/webhook/raw": deliver_raw,
            "/_double/app": set_app,
        }
        if cmd == "POST" and path in posts:
            return posts[path](state, args)
        if cmd == "GET" and path == "/_double/requests":
            return list(state.requests)
        if cmd == "POST" and path == "/_double/requests/clear":
            state.requests = []
            return {"ok": True}
        if cmd == "GET" and path == "/_double/budgets":
            return [state.budget_for(t, None).as_dict()
                    for t in state.tokens]
        if cmd == "POST" and path == "/_double/delay":
            state.delay = {"seconds": float(args.get("seconds", 1)),
                           "count": int(args.get("count", 1))}
            return {"ok": True}
        if cmd == "POST" and path == "/_double/reset":
            state.reset()
            return {"ok": True}
        if cmd == "GET" and path == "/_double/app":
            return app_report(state)
        if cmd == "GET" and path == "/_double/jobs":
            return list(state.jobs)
        if cmd == "GET" and path == "/_double/repos":
            return [public_repo(r) for r in sorted(
                state.repos.values(), key=lambda r: r["full_name"].lower())
                if r["listed"]]
        if cmd == "GET" and path == "/_double/runs":
            return [dict(run, status=state.run_status(run["id"])[0])
                    for _, run in sorted(state.runs.items())]
        if cmd == "GET" and path == "/_double/deliveries":
            full = query.get("body", ["0"])[0] not in ("0", "")
            return [public_delivery(d, full) for d in state.deliveries]
        if cmd == "DELETE" and path == "/_double/webhook":
            state.hook = None
            return {"ok": True}
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
            auth = self.auth = authenticate(state, token)
            resp, budget = self.answer(state, url, body, auth)
            charged = self.charge(budget, resp)
            headers = self.rate_headers(budget)
            self.record(state, resp.status, charged)
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

    def answer(self, state, url, body, auth):
        budget = state.budget_for(auth["key"], self.client_address[0])
        fail = state.take_fail(self.path)
        if fail is not None and fail["mode"] == "status":
            return self.injected(fail), budget
        if auth["kind"] == "jwt-bad":
            resp = error(401, auth["message"], doc=APP_DOC_URL,
                         with_status=False)
            resp.charge = False
            return resp, budget
        if auth["kind"] not in ("pat", "jwt", "installation"):
            resp = error(401, "Bad credentials", with_status=False)
            resp.charge = False
            return resp, budget
        if budget.remaining <= 0:
            resp = error(budget.status, "API rate limit exceeded for user "
                         "ID 1.", doc=RATE_DOC_URL)
            resp.charge = False
            return resp, budget
        resp = app_refusal(state, url.path, auth)
        if resp is not None:
            return resp, budget
        ctx = Context(self, state, url.path,
                      urllib.parse.parse_qs(url.query), auth, budget, body)
        resp = self.route(ctx)
        if fail is not None:
            self.truncate(resp)
        return resp, budget

    @staticmethod
    def injected(fail):
        """An injected error; 403 and 429 say "secondary rate limit"."""
        status = fail["status"]
        if status in (403, 429):
            resp = error(status, fail["message"] or
                         "You have exceeded a secondary rate limit. Please "
                         "wait a few minutes before you try again.",
                         doc=SECONDARY_DOC_URL)
        else:
            resp = error(status, fail["message"] or "Server Error",
                         with_status=status < 500)
        if fail["retry_after"] is not None:
            resp.headers["Retry-After"] = str(fail["retry_after"])
        resp.charge = False
        return resp

    def truncate(self, resp):
        """The "malformed" failure: a 200 whose JSON is cut in half."""
        payload = self.encode(resp.body)
        resp.status = 200
        resp.body = payload[:max(len(payload) // 2, 1)]
        resp.etag = False

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
            return True
        return False

    def conditional(self, resp):
        """Add the validators; turn resp into a 304 when the client's match."""
        payload = self.encode(resp.body)
        if isinstance(resp.etag, str):
            resp.headers["ETag"] = resp.etag
        elif resp.etag:
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

    def record(self, state, status, charged=False):
        headers = {}
        for k, v in self.headers.items():
            if k.lower() != "authorization":
                headers[k] = v
        headers["Authorization"] = "present" if \
            self.headers.get("Authorization") else "absent"
        auth = self.auth or {}
        state.requests.append({"method": self.command, "path": self.path,
                               "status": status, "charged": charged,
                               "headers": headers, "time": time.time(),
                               "auth": auth.get("kind"),
                               "installation": auth.get("installation")})
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


# ---- demo mode --------------------------------------------------------

DEMO_CI = """name: CI
on: [push, pull_request]
jobs:
  build:
    runs-on: [self-hosted, linux]
    steps:
      - run: make
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: make lint
"""
DEMO_MATRIX = """name: Matrix
on: push
jobs:
  test:
    strategy:
      matrix:
        os: [self-hosted, ubuntu-latest]
    runs-on: ${{ matrix.os }}
    steps:
      - run: make test
"""
DEMO_GROUP = """name: Deploy
on: workflow_dispatch
jobs:
  deploy:
    runs-on:
      group: Default
      labels: [self-hosted, linux]
    steps:
      - run: ./deploy
"""
DEMO_HOSTED = """name: Docs
on: push
jobs:
  docs:
    runs-on: ubuntu-latest
    steps:
      - run: make docs
"""
DEMO_STRING = """name: Nightly
on:
  schedule:
    - cron: "0 3 * * *"
jobs:
  nightly:
    runs-on: self-hosted
    steps:
      - run: make check
"""
# repo, owner type, workflows, the label sets its jobs ask for
DEMO_WORLD = (
    ("{login}/hello-world", "User", {"ci.yml": DEMO_CI},
     [["self-hosted", "linux"], ["ubuntu-latest"]]),
    ("{login}/matrix", "User", {"matrix.yml": DEMO_MATRIX},
     [["self-hosted"], ["ubuntu-latest"]]),
    ("{login}/docs", "User", {"docs.yml": DEMO_HOSTED},
     [["ubuntu-latest"]]),
    ("octo-org/api", "Organization",
     {"ci.yml": DEMO_CI, "deploy.yml": DEMO_GROUP},
     [["self-hosted", "linux"]]),
    ("octo-org/nightly", "Organization", {"nightly.yml": DEMO_STRING},
     [["self-hosted"]]),
)


def demo_world(state):
    """octocat's 3 repositories and octo-org's 2, some hosted-only."""
    table = []
    for name, kind, workflows, label_sets in DEMO_WORLD:
        full = name.format(login=state.login)
        put_repo(state, {"full_name": full, "owner_type": kind,
                         "workflows": workflows})
        for labels in label_sets:
            workflow = sorted(workflows)[0]
            table.append((full, workflow, labels))
    return table


def demo_loop(state, table, stop):
    """A job every 20 to 40 s on a random repository, forever."""
    rng = random.Random()
    while not stop.wait(rng.uniform(20, 40)):
        full, workflow, labels = rng.choice(table)
        with state.lock:
            job = queue_job(state, {"repo": full, "workflow": workflow,
                                    "labels": labels,
                                    "duration": rng.uniform(5, 15)})
        print("demo: queued job %d on %s for %s" %
              (job["id"], full, ",".join(labels)), flush=True)


def start_demo(state, opts, stop):
    with state.lock:
        table = demo_world(state)
        if opts.webhook_url:
            set_hook(state, {"url": opts.webhook_url,
                             "secret": opts.webhook_secret or ""})
    threading.Thread(target=demo_loop, args=(state, table, stop),
                     name="demo", daemon=True).start()


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
    ap.add_argument("--app-id", type=int, help="a GitHub App's id")
    ap.add_argument("--app-key-file", help="the App's public key (PEM)")
    ap.add_argument("--demo", action="store_true",
                    help="a small world with a job every 20-40 s")
    ap.add_argument("--webhook-url", help="with --demo: deliver webhooks "
                    "here")
    ap.add_argument("--webhook-secret", help="with --demo: sign them so")
    opts = ap.parse_args()
    if opts.webhook_url and not opts.demo:
        ap.error("--webhook-url goes with --demo; tests use /_double/"
                 "webhook")

    server = Server(opts.listen, Handler)
    state = server.state = State(opts.token, opts.login, opts.rate_limit)
    server.log = open(opts.log, "a", encoding="utf-8") if opts.log else None
    if (opts.app_id is None) != (opts.app_key_file is None):
        ap.error("--app-id and --app-key-file go together")
    if opts.app_id is not None:
        with open(opts.app_key_file, encoding="ascii") as f:
            try:
                state.app = App(opts.app_id, f.read())
            except ControlError as e:
                ap.error(str(e))
    host, port = server.server_address[:2]
    state.base_url = "http://%s:%d" % (host, port)
    deliverer = Deliverer(state)
    deliverer.start()
    stopping = threading.Event()

    def stop(signum, frame):
        # shutdown() waits for serve_forever(), so it cannot run here.
        stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    print("listening on %s:%d" % (host, port), flush=True)
    if opts.demo:
        start_demo(state, opts, stopping)
    server.serve_forever()
    server.server_close()
    state.outbox.put((0, None))
    if state.app is not None:
        state.app.close()
    if server.log is not None:
        server.log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
