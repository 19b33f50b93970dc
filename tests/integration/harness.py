"""The small harness of ephemerd's integration tests.

It starts the GitHub double and the real daemon, reads the process tree
from /proc, talks HTTP, and tears everything down even when a test fails.
Python 3 standard library only; the tests run as root.
"""

import contextlib
import http.client as httpclient
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.dirname(os.path.dirname(HERE))
DOUBLE = os.path.join(SRCDIR, "tests", "double", "ghdouble.py")
USER = "_ephemerd"
ROLES = ("httpd", "poller", "docker")
DAEMON_ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    # LeakSanitizer needs /proc, which the chrooted httpd has not.
    "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ERROR: UndefinedBehaviorSanitizer")
LOG_LINE = re.compile(
    r"^(START|CONFIG|MONITOR|SUCCESS|ERROR|WARNING|INFO|REQUEST|RESPONSE|"
    r"HEALTH|SHUTDOWN) (supervisor|httpd|poller|docker): ")

BINARY = None           # set by run.py
INSTANCES = set()       # of every Daemon made by this process


class TestFailure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise TestFailure(message)


def wait_for(cond, timeout, what, interval=0.05):
    """Call cond() until it returns a true value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1fs waiting for %s" %
                              (timeout, what))
        time.sleep(interval)


def sanitizer_report(text):
    """A short summary of the first sanitizer report in text, or ""."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if any(m in line for m in SANITIZER_MARKS):
            break
    else:
        return ""
    out = [line.strip()]
    for frame in lines[i + 1:i + 60]:
        # Our own frames say where; the sanitizer's and libc's do not.
        if re.match(r"\s*#\d+ ", frame) and "libsanitizer" not in frame \
                and "libc" not in frame and "/csu/" not in frame:
            out.append(re.sub(r"^\s*#\d+ 0x[0-9a-f]+ ", "", frame))
            if len(out) >= 5:
                break
    return " | ".join(out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def version_from_configure():
    with open(os.path.join(SRCDIR, "configure.ac"), encoding="utf-8") as f:
        m = re.search(r"AC_INIT\(\[[^]]*\],\s*\[([^]]+)\]", f.read())
    check(m is not None, "no version in configure.ac's AC_INIT")
    return m.group(1)


# ---- HTTP -----------------------------------------------------------

class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise TestFailure("not JSON (%s): %r" % (e, self.body[:200]))


def request(method, port, path, body=None, headers=None, timeout=10):
    """One request on a fresh connection; connection errors raise OSError."""
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"User-Agent": "ephemerd-tests"}
        hdrs.update(headers or {})
        data = None
        if isinstance(body, bytes):
            data = body         # sent as it is, for malformed bodies
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()},
                     r.read())
    finally:
        conn.close()


def request_try(method, port, path, **kw):
    try:
        return request(method, port, path, **kw)
    except (OSError, httpclient.HTTPException):
        return None


# ---- /proc ------------------------------------------------------------

def proc_read(pid, name):
    try:
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def proc_stat(pid):
    """(state, ppid) or None when the process is gone."""
    raw = proc_read(pid, "stat")
    if raw is None:
        return None
    rest = raw.decode("utf-8", "replace").rsplit(")", 1)[1].split()
    return rest[0], int(rest[1])


def proc_cmdline(pid):
    raw = proc_read(pid, "cmdline")
    if raw is None:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def proc_ids(pid):
    """{'Uid': [r, e, s, fs], 'Gid': [...], 'Groups': [...]}."""
    raw = proc_read(pid, "status")
    check(raw is not None, "process %d vanished" % pid)
    out = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            out[key] = [int(x) for x in value.split()]
    return out


def proc_root(pid):
    try:
        return os.readlink("/proc/%d/root" % pid)
    except FileNotFoundError:
        return None


def proc_environ(pid):
    raw = proc_read(pid, "environ")
    return b"" if raw is None else raw


def children_of(ppid):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st is not None and st[1] == ppid:
            out.append(int(name))
    return sorted(out)


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def role_of(pid):
    """The role in the title "ephemerd: ROLE", or None.  Under valgrind
    /proc/PID/cmdline stays valgrind's own; the thread name
    "ephemerd-ROLE", set with the title, tells the children apart then."""
    cmd = proc_cmdline(pid) or ""
    m = re.match(r"ephemerd: (\w+)", cmd)
    if m:
        return m.group(1)
    comm = (proc_read(pid, "comm") or b"").strip()
    m = re.match(rb"ephemerd-(\w+)$", comm)
    return m.group(1).decode() if m else None


# ---- the GitHub double ----------------------------------------------

class Double:
    """The GitHub API double, started on a port of its own choosing."""

    def __init__(self, tmpdir, tokens):
        self.tokens = list(tokens)
        self.logpath = os.path.join(tmpdir, "double.log")
        self.errpath = os.path.join(tmpdir, "double.stderr")
        args = [sys.executable, DOUBLE, "--listen", "127.0.0.1:0",
                "--log", self.logpath]
        for t in self.tokens:
            args += ["--token", t]
        self.err = open(self.errpath, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=self.err)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"listening on 127\.0\.0\.1:(\d+)$", line.strip())
        if m is None:
            self.stop()
            raise TestFailure("double did not start: %r" % line)
        self.port = int(m.group(1))
        self.url = "http://127.0.0.1:%d" % self.port

    def control(self, method, path, body=None):
        r = request(method, self.port, "/_double/" + path, body=body)
        check(r.status == 200, "double control %s: %d" % (path, r.status))
        return r.json()

    def requests(self):
        return self.control("GET", "requests")

    def clear_requests(self):
        self.control("POST", "requests/clear")

    def deliveries(self, body=False):
        return self.control("GET", "deliveries?body=1" if body
                            else "deliveries")

    def remaining(self, index=0):
        return self.control("GET", "budgets")[index]["remaining"]

    def stop(self):
        """SIGTERM; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.err.close()
        return self.proc.returncode


# ---- the daemon -------------------------------------------------------

def write_config(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


class Daemon:
    """One ephemerd with its own temp dir, config, token and double.

    Use it as a context manager: whatever happens in the test, the daemon
    and the double are stopped and the temp dir is removed on exit."""

    def __init__(self, token_in_env=False, as_user=None, chroot=True,
                 level="debug", start=True, extra_yaml="", pools=None,
                 github_yaml=""):
        # pools: the YAML list under "pools:", formatted with
        # {double_url}; None gives one busybox pool named default.
        # github_yaml: more keys of the github: section, indented.
        self.pools = pools
        self.github_yaml = github_yaml
        self.tmp = tempfile.mkdtemp(prefix="ephemerd-it.")
        os.chmod(self.tmp, 0o755)
        self.token = "ghp_" + secrets.token_hex(18)
        self.token_in_env = token_in_env
        self.as_user = as_user
        self.proc = None
        self.double = None
        self.stderr = os.path.join(self.tmp, "ephemerd.stderr")
        self.chroot = os.path.join(self.tmp, "empty") if chroot else ""
        if chroot:
            os.mkdir(self.chroot, 0o755)
        self.port = free_port()
        # Its own instance name, so that runners of another daemon on
        # this engine (an earlier test, a parallel run) are not adopted.
        self.instance = "t" + secrets.token_hex(3)
        INSTANCES.add(self.instance)
        self.config = os.path.join(self.tmp, "ephemerd.yaml")
        self.token_file = os.path.join(self.tmp, "token")
        try:
            self.double = Double(self.tmp, [self.token])
            self._write_token()
            self.write(level=level, extra=extra_yaml)
            if start:
                self.start()
        except BaseException:
            self.close()
            raise

    def _write_token(self):
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.token + "\n")
        if self.as_user is not None:
            pw = pwd.getpwnam(self.as_user)
            os.chown(self.token_file, pw.pw_uid, pw.pw_gid)

    def config_text(self, level="debug", extra=""):
        token_line = "" if self.token_in_env else \
            "  token_file: %s\n" % self.token_file
        return (
            "instance: %s\n"
            "user: %s\n"
            "chroot: \"%s\"\n"
            "log:\n"
            "  level: %s\n"
            "github:\n"
            "  api_url: \"%s\"\n"
            "%s"
            "%s"
            "docker:\n"
            "  socket: /var/run/docker.sock\n"
            "httpd:\n"
            "  listen: \"127.0.0.1:%d\"\n"
            "pools:\n"
            "%s"
            "%s") % (self.instance, USER, self.chroot, level,
                     self.double.url, token_line,
                     self.github_yaml, self.port, self.pools_text(), extra)

    def pools_text(self):
        if self.pools is None:
            return ("  - name: default\n"
                    "    labels: [self-hosted]\n"
                    "    image: busybox:latest\n")
        return self.pools.replace("{double_url}", self.double.url)

    def write(self, level="debug", extra="", text=None):
        write_config(self.config, text if text is not None else
                     self.config_text(level, extra))

    def start(self, wait=True):
        env = dict(DAEMON_ENV)
        if self.token_in_env:
            env["GITHUB_RUNNER_TOKEN"] = self.token
        args = [BINARY, "-d", "-f", self.config]
        if self.as_user is not None:
            args = ["setpriv", "--reuid=" + self.as_user,
                    "--regid=" + self.as_user, "--clear-groups"] + args
        self.err = open(self.stderr, "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.err, stderr=self.err,
                                     env=env, cwd=self.tmp)
        self.pid = self.proc.pid
        if wait:
            self.wait_healthy_http()

    def wait_healthy_http(self, timeout=20):
        def up():
            if self.proc.poll() is not None:
                raise TestFailure("ephemerd exited with %d at start: %s" %
                                  (self.proc.returncode,
                                   sanitizer_report(self.log()) or
                                   self.tail(10)))
            r = request_try("GET", self.port, "/health", timeout=2)
            return r is not None and r.status == 200
        wait_for(up, timeout, "GET /health to answer 200")

    # -- reading it

    def log(self):
        with open(self.stderr, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        return self.log().splitlines()

    def tail(self, n=30):
        return "\n".join(self.log_lines()[-n:])

    def wait_log(self, pattern, timeout=5, start=0):
        """Wait for a log line (after line index start) matching pattern."""
        rx = re.compile(pattern)

        def found():
            for line in self.log_lines()[start:]:
                if rx.search(line):
                    return line
            return None
        return wait_for(found, timeout, "a log line matching /%s/" % pattern)

    def children(self):
        return children_of(self.pid)

    def roles(self):
        """{role: pid} of the live children."""
        out = {}
        for pid in self.children():
            if not alive(pid):
                continue
            role = role_of(pid)
            if role is not None:
                out[role] = pid
        return out

    def wait_roles(self, timeout=10):
        return wait_for(lambda: (lambda r: r if set(r) == set(ROLES)
                                 else None)(self.roles()),
                        timeout, "the three children httpd, poller, docker")

    def zombies(self):
        return [p for p in self.children()
                if (proc_stat(p) or ("?",))[0] == "Z"]

    def get(self, path, timeout=10):
        return request("GET", self.port, path, timeout=timeout)

    def api_health(self, timeout=10):
        r = self.get("/api/v1/health", timeout=timeout)
        return r, r.json()

    # -- stopping it

    def kill(self, signum):
        os.kill(self.pid, signum)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, signum=signal.SIGTERM, timeout=5):
        """Signal the supervisor; fail when it or a child outlives timeout."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        kids = self.children()
        self.kill(signum)
        rc = self.wait_exit(timeout)
        if rc is None:
            self.kill_all(kids)
            raise TestFailure("ephemerd still running %ds after signal %d" %
                              (timeout, signum))
        left = [p for p in kids if alive(p)]
        if left:
            self.kill_all(left)
            raise TestFailure("children %s outlived the supervisor" % left)
        return rc

    def kill_all(self, kids):
        for pid in [self.pid] + list(kids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def close(self):
        """Tear down everything; report problems found in the log."""
        problems = []
        try:
            if self.proc is not None and self.proc.poll() is None:
                try:
                    self.stop()
                except TestFailure as e:
                    problems.append(str(e))
            if self.proc is not None:
                self.err.close()
                log = self.log()
                report = sanitizer_report(log)
                if report:
                    problems.append("sanitizer report in the log: " + report)
                if self.token in log:
                    problems.append("the GitHub token appears in the log")
        finally:
            if self.double is not None:
                self.double.stop()
            keep = os.environ.get("EPHEMERD_KEEP_TMP")
            if keep and self.proc is not None:
                shutil.copy(self.stderr, os.path.join(
                    keep, "ephemerd.%d.log" % self.pid))
            shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            raise TestFailure("; ".join(problems))

    def __enter__(self):
        return self

    def __exit__(self, etype, value, tb):
        try:
            self.close()
        except TestFailure:
            if etype is None:
                raise
        return False


def run_binary(args, env=None, timeout=20, user=None):
    """Run the binary to completion: (status, stdout, stderr)."""
    cmd = [BINARY] + list(args)
    if user is not None:
        cmd = ["setpriv", "--reuid=" + user, "--regid=" + user,
               "--clear-groups"] + cmd
    e = dict(DAEMON_ENV)
    e.update(env or {})
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                       env=e, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    report = sanitizer_report(out + err)
    check(not report, "sanitizer report: " + report)
    return p.returncode, out, err


def docker_server_versions():
    """(version, api_version) as the docker CLI reports them."""
    fmt = "{{.Server.Version}} {{.Server.APIVersion}}"
    p = subprocess.run(["docker", "version", "--format", fmt],
                       capture_output=True, timeout=20)
    check(p.returncode == 0, "docker version failed: %r" % p.stderr[-300:])
    version, api = p.stdout.decode().split()
    return version, api


def ensure_busybox_image():
    """Make busybox:latest from busybox-static when it is missing.

    The test machines have no registry, so the image is imported from a
    root file system that holds the static busybox and its applet links."""
    if subprocess.run(["docker", "image", "inspect", "busybox:latest"],
                      capture_output=True).returncode == 0:
        return
    bb = shutil.which("busybox") or "/bin/busybox"
    root = tempfile.mkdtemp(prefix="busybox-root.")
    try:
        os.makedirs(os.path.join(root, "bin"))
        shutil.copy(bb, os.path.join(root, "bin", "busybox"))
        subprocess.run([os.path.join(root, "bin", "busybox"), "--install",
                        "-s", os.path.join(root, "bin")], check=True)
        # --install writes absolute links to /bin/busybox, right in the image.
        for d in ("tmp", "etc", "proc", "sys", "dev"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        tar = subprocess.Popen(["tar", "-C", root, "-cf", "-", "."],
                               stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-c", 'CMD ["/bin/sh"]', "-",
                        "busybox:latest"], stdin=tar.stdout, check=True,
                       capture_output=True)
        tar.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def docker_sock_peers():
    """The pids holding the client end of each connection to docker.sock.

    From `ss -xp`: the engine's end shows the socket's path and the peer's
    inode; the client's end is the line whose own inode is that peer."""
    p = subprocess.run(["ss", "-xpn"], capture_output=True, timeout=10)
    lines = p.stdout.decode("utf-8", "replace").splitlines()[1:]
    rows = []
    for line in lines:
        f = line.split()
        if len(f) < 8 or f[1] != "ESTAB":
            continue
        pids = [int(x) for x in re.findall(r"pid=(\d+)", line)]
        rows.append((f[4], f[5], f[7], pids))
    peers = {peer for path, _, peer, _ in rows
             if path in ("/var/run/docker.sock", "/run/docker.sock")}
    out = set()
    for _, inode, _, pids in rows:
        if inode in peers:
            out.update(pids)
    return out
