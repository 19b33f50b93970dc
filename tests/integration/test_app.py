"""GitHub App authentication, end to end.

ephemerd runs as a GitHub App against the double, which checks the
JWT's RS256 signature with the App's public key (openssl), issues
installation tokens that expire and refuses expired ones.  The key is
made here with the openssl command; no personal access token is
configured."""

import json
import os
import re
import subprocess
import time

from harness import Daemon, check, run_binary, wait_for
import test_auto as ta
import test_runners as tr

APP_ID = 424242
USER_INSTALLATION = 5100001
ORG_INSTALLATION = 5100002
# base64url of {"alg":"RS256","typ":"JWT"}: how every JWT starts.
JWT_HEADER = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"

WORLD = [
    ("octocat/app-list", {"workflows": {"ci.yml": ta.workflow(ta.LIST)}},
     [["self-hosted", "linux"]]),
    ("octocat/site", {"workflows": {"pages.yml": ta.workflow(ta.HOSTED)}},
     []),
    ("octo-org/api", {"owner_type": "Organization",
                      "workflows": {"ci.yml": ta.workflow(ta.LIST)}}, []),
    ("octo-org/secret", {"owner_type": "Organization",
                         "workflows": {"ci.yml": ta.workflow(ta.LIST)}},
     None),
]


def make_key(directory, mode=0o600):
    """An RSA key pair by the openssl command: (private, public) paths."""
    key = os.path.join(directory, "app.pem")
    pub = os.path.join(directory, "app.pub.pem")
    for args in (["genpkey", "-algorithm", "RSA", "-pkeyopt",
                  "rsa_keygen_bits:2048", "-out", key],
                 ["pkey", "-in", key, "-pubout", "-out", pub]):
        p = subprocess.run(["openssl"] + args, capture_output=True,
                           timeout=60)
        check(p.returncode == 0, "openssl %s: %r" % (args[0], p.stderr))
    os.chmod(key, mode)
    return key, pub


def key_body_lines(key):
    """The base64 lines of the private key: none may reach a log."""
    with open(key, encoding="ascii") as f:
        return [x for x in f.read().splitlines()
                if x and not x.startswith("-----")]


def app_config(d, key, installation_id=None):
    """The daemon's configuration as the App, without any token."""
    github = "  app_id: %d\n  private_key_file: %s\n" % (APP_ID, key)
    if installation_id is not None:
        github += "  installation_id: %d\n" % installation_id
    d.github_yaml = github
    text = d.config_text(extra=ta.discovery(interval=2, purge=5))
    text = text.replace("  token_file: %s\n" % d.token_file,
                        "  token_file: \"\"\n")
    check("token_file: \"\"" in text and "app_id" in text,
          "config %r" % text)
    d.write(text=text)


def set_app(d, pub, ttl):
    with open(pub, encoding="ascii") as f:
        pem = f.read()
    d.double.control("POST", "app", {
        "app_id": APP_ID, "public_key_pem": pem, "token_ttl": ttl,
        "installations": [
            {"id": USER_INSTALLATION, "account": "octocat"},
            {"id": ORG_INSTALLATION, "account": "octo-org",
             "repositories": ["octo-org/api"]}]})


class AppDaemon:
    """A daemon in App mode with its world and a clean engine after."""

    def __init__(self, ttl=3600, pools=None, world=WORLD,
                 foreign_key=False):
        tr.build_runner_image()
        tr.remove_managed()
        self.world = world
        self.foreign_key = foreign_key
        self.d = Daemon(pools=pools or ta.pools(
            ("linux", ["self-hosted", "linux"])), start=False)
        try:
            self.key, self.pub = make_key(self.d.tmp)
            app_config(self.d, self.key)
            if foreign_key:
                other = os.path.join(self.d.tmp, "other")
                os.mkdir(other)
                _, self.pub = make_key(other)
            set_app(self.d, self.pub, ttl)
            for full_name, args, _ in world:
                self.d.double.control("POST", "repos",
                                      dict(args, full_name=full_name))
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        try:
            self.d.start()
            if not self.foreign_key:
                wait_for(lambda: self.d.api_health()[0].status == 200, 20,
                         "/api/v1/health to be healthy")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, etype, value, tb):
        self.close()
        return False

    def close(self):
        try:
            self.d.close()
        finally:
            tr.remove_managed()

    queue = ta.Auto.queue
    jobs = ta.Auto.jobs
    wait_completed = ta.Auto.wait_completed

    def api_requests(self):
        return self.d.double.requests()

    def report(self):
        return self.d.double.control("GET", "app")

    def check_clean(self):
        """Every request carried the right credential, none was refused
        for its credential, and no secret reached the log."""
        reqs = self.api_requests()
        bad_auth = [(r["method"], r["path"], r["auth"]) for r in reqs
                    if r["auth"] not in ("jwt", "installation")]
        check(not bad_auth, "requests without an App credential: %r" %
              bad_auth[:5])
        jwt_off_app = [r["path"] for r in reqs if r["auth"] == "jwt" and
                       not r["path"].startswith("/app/")]
        check(not jwt_off_app, "a JWT went to %r" % jwt_off_app[:5])
        refused = [(r["method"], r["path"], r["status"]) for r in reqs
                   if r["status"] in (401, 403)]
        check(not refused, "requests refused: %r" % refused[:5])
        rep = self.report()
        check(rep["expired_refused"] == 0 and rep["jwt_refused"] == 0 and
              rep["jwt_elsewhere"] == 0 and rep["token_on_app"] == 0,
              "double's App report %r" % {k: v for k, v in rep.items()
                                          if k != "tokens"})
        log = self.d.log()
        for t in rep["tokens"]:
            check(t["token"] not in log, "an installation token is in "
                  "the log")
        check(JWT_HEADER not in log, "a JWT is in the log")
        for line in key_body_lines(self.key):
            check(line not in log, "the private key is in the log")


def test_app_key_mode_checked():
    d = Daemon(start=False)
    try:
        key, _ = make_key(d.tmp, mode=0o644)
        app_config(d, key)
        rc, out, err = run_binary(["-n", "-f", d.config])
        text = out + err
        check(rc != 0, "ephemerd -n accepted a 0644 key: %r" % text)
        check("%s: the private key is accessible by group or others "
              "(mode 644); chmod 600" % key in text, "message %r" % text)
        for line in key_body_lines(key):
            check(line not in text, "the key is in the message")

        os.chmod(key, 0o600)
        rc, out, err = run_binary(["-n", "-f", d.config])
        check(rc == 0 and "configuration OK" in out + err,
              "ephemerd -n with a 0600 key: %d %r" % (rc, out + err))

        with open(key, "w", encoding="ascii") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n"
                    "-----END PRIVATE KEY-----\n")
        rc, out, err = run_binary(["-n", "-f", d.config])
        check(rc != 0 and "%s: not a PEM RSA private key" % key in out + err,
              "ephemerd -n with no key in the file: %d %r" % (rc, out + err))
    finally:
        d.close()


def test_app_discovery_jobs_and_renewal():
    """Token lifetime 8 s: discovery, a job served, and another one
    after more than three lifetimes, with tokens renewed in time."""
    ttl = 8
    with AppDaemon(ttl=ttl) as a:
        d = a.d
        # Discovery walks each installation's repositories, never the
        # user's, and only what the installations reach.
        for repo in ("octocat/app-list", "octo-org/api"):
            wait_for(lambda: any(r["path"].startswith(
                "/repos/%s/contents/" % repo) for r in a.api_requests()),
                30, "discovery of " + repo, interval=0.2)
        reqs = a.api_requests()
        listed = {r["installation"] for r in reqs
                  if r["path"].startswith("/installation/repositories") and
                  r["status"] == 200}
        check(listed == {USER_INSTALLATION, ORG_INSTALLATION},
              "GET /installation/repositories as installations %r" %
              sorted(listed))
        check(not [r for r in reqs if r["path"].startswith("/user")],
              "/user... asked as an App")
        first = time.time()

        job = a.queue("octocat/app-list", ["self-hosted", "linux"])
        org_job = a.queue("octo-org/api", ["self-hosted", "linux"])
        a.wait_completed([job["id"], org_job["id"]])

        # Past three lifetimes of a token, the daemon still works.
        while time.time() < first + 3 * ttl + 2:
            time.sleep(1)
        job2 = a.queue("octocat/app-list", ["self-hosted", "linux"])
        a.wait_completed([job2["id"]])

        rep = a.report()
        mine = [t for t in rep["tokens"]
                if t["installation"] == USER_INSTALLATION]
        check(len({t["token"] for t in mine}) >= 4,
              "%d tokens issued for the user's installation in %.0f s" %
              (len(mine), time.time() - first))
        # Each was asked for before the one before it expired.
        late = [(round(n["issued"] - p["expires"], 1))
                for p, n in zip(mine, mine[1:])
                if n["issued"] >= p["expires"]]
        check(not late, "tokens renewed %r s after the last expired" %
              late)
        a.check_clean()
        secret_polled = [r["path"] for r in a.api_requests()
                         if "octo-org/secret" in r["path"]]
        check(not secret_polled, "a repository the App does not reach "
              "was asked for: %r" % secret_polled[:3])
        check(d.wait_log(r"GitHub App %d: 2 installations" % APP_ID),
              "no log line about the installations")


def test_app_api_runners_per_installation():
    """Runners created through the API for a repository and for an
    organization: each request carries its own installation's token."""
    with AppDaemon(pools=tr.pool()) as a:
        d = a.d
        for scope, name in (("repo", "octocat/app-list"),
                            ("org", "octo-org")):
            r = tr.post_runners(d, {"scope": scope, "scope_name": name,
                                    "count": 1})
            check(r.status == 201, "POST %s %s: %d %r" % (
                scope, name, r.status, r.body[:300]))
        wait_for(lambda: len(tr.double_runners(d)) == 2, 30,
                 "two runners registered on the double")
        jit = [r for r in a.api_requests()
               if r["path"].endswith("/generate-jitconfig")]
        by_path = {r["path"]: r["installation"] for r in jit}
        check(by_path.get("/repos/octocat/app-list/actions/runners/"
                          "generate-jitconfig") == USER_INSTALLATION and
              by_path.get("/orgs/octo-org/actions/runners/"
                          "generate-jitconfig") == ORG_INSTALLATION,
              "generate-jitconfig by installation: %r" % by_path)

        # A repository of an account without the App: a clear refusal.
        r = tr.post_runners(d, {"scope": "repo", "scope_name": "hubot/x",
                                "count": 1})
        check(r.status >= 400 and b"not installed for hubot" in r.body,
              "POST for hubot/x: %d %r" % (r.status, r.body[:300]))
        a.check_clean()


def test_app_jwt_of_another_key_refused():
    """The double checks the signature: a JWT signed with a key that is
    not the App's gets no token, and the error says why."""
    with AppDaemon(pools=tr.pool(), foreign_key=True) as a:
        d = a.d
        r, health = wait_for(
            lambda: (lambda rh: rh if "A JSON web token" in json.dumps(
                rh[1]) else None)(d.api_health()), 20,
            "/api/v1/health to say why GitHub is unhealthy")
        check(r.status == 503, "health %d with a foreign key" % r.status)
        r = tr.post_runners(d, {"scope": "repo",
                                "scope_name": "octocat/app-list",
                                "count": 1})
        check(r.status >= 400 and
              b"A JSON web token could not be decoded" in r.body,
              "POST with a foreign key: %d %r" % (r.status, r.body[:300]))
        rep = a.report()
        check(rep["jwt_refused"] >= 1 and rep["issued"] == 0,
              "double's App report %r" % rep)
        check(not tr.double_runners(d), "a runner was registered")
        d.wait_log(r"cannot list the GitHub App's installations: GitHub "
                   r"answered 401: A JSON web token could not be decoded")
