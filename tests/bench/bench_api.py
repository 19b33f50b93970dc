#!/usr/bin/python3
"""Benchmark: the REST API's reads under load, next to nginx.

    python3 tests/bench/bench_api.py --binary build/ephemerd [-n 100]

Starts ephemerd with a pool of the test runner image, creates n runners
through the API (real containers; the GitHub double registers them) and
waits until the runner table holds them.  Then runs
`wrk -t2 -c50 -d10s --latency` against GET /api/v1/runners and /health,
and against nginx (one worker, like httpd's one process) serving the
same JSON as a static file, and prints requests per second, p99 latency
and the ratios.  The rate limit is set high enough not to answer 429,
but it still runs, as do authentication and request logging at info
level.  Run as root with the Docker engine up; prints, asserts nothing."""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402
import test_runners as tr  # noqa: E402
from test_api import TOKEN, api_daemon  # noqa: E402

WRK = ["wrk", "-t2", "-c50", "-d10s", "--latency"]


def wrk(url, headers=()):
    args = list(WRK)
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args + [url], capture_output=True, timeout=60,
                         check=True).stdout.decode()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p99, int(non2xx.group(1)) if non2xx else 0


def static_nginx(tmp, body):
    os.chmod(tmp, 0o755)        # nginx's workers are not root
    root = os.path.join(tmp, "www")
    os.makedirs(root)
    with open(os.path.join(root, "runners.json"), "wb") as f:
        f.write(body)
    port = harness.free_port()
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("worker_processes 1;\npid %(t)s/nginx.pid;\n"
                "error_log %(t)s/error.log;\n"
                "events { worker_connections 1024; }\n"
                "http { access_log %(t)s/access.log;\n"
                "  types { application/json json; }\n"
                "  server { listen 127.0.0.1:%(p)d; root %(r)s; } }\n" %
                {"t": tmp, "p": port, "r": root})
    proc = subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"])
    harness.wait_for(lambda: harness.request_try(
        "GET", port, "/runners.json") is not None, 10, "nginx")
    return proc, port


def fill_table(d, n):
    auth = {"Authorization": "Bearer " + TOKEN}
    harness.wait_for(lambda: harness.request(
        "GET", d.port, "/api/v1/health").status == 200, 60,
        "all processes healthy", 0.5)
    # The GitHub double answers one request at a time: ask in batches.
    deadline = time.monotonic() + 300
    while True:
        r = harness.request("GET", d.port, "/api/v1/runners", headers=auth)
        have = len([x for x in r.json()["data"] if x["status"] != "exited"])
        if have >= n or time.monotonic() > deadline:
            break
        r = harness.request("POST", d.port, "/api/v1/runners", body={
            "scope": "repo", "scope_name": "octo/hello",
            "count": min(10, n - have)}, headers=auth, timeout=300)
        if r.status not in (201, 503):
            raise SystemExit("bench: POST answered %d: %s" %
                             (r.status, r.json()["message"]))

    def full():
        r = harness.request("GET", d.port, "/api/v1/runners", headers=auth)
        return r.body if r.status == 200 and \
            len(r.json()["data"]) >= n else None
    return harness.wait_for(full, 180, "%d runners in the table" % n, 0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("-n", type=int, default=100)
    opts = ap.parse_args()
    harness.BINARY = os.path.abspath(opts.binary)
    harness.ensure_busybox_image()
    tr.build_runner_image()
    tr.remove_managed()
    extra = ("  api_tokens: [%s]\n"
             "  rate_limit: {rate: 10000000, burst: 10000000}\n" % TOKEN)
    tmp = tempfile.mkdtemp(prefix="bench-api.")
    ng = None
    try:
        with api_daemon(extra, level="info",
                        pools=tr.pool(max_runners=opts.n)) as d:
            body = fill_table(d, opts.n)
            ng, ng_port = static_nginx(tmp, body)
            base = "http://127.0.0.1:%d" % d.port
            res = {
                "GET /api/v1/runners": wrk(base + "/api/v1/runners", [
                    "Authorization: Bearer " + TOKEN]),
                "GET /health": wrk(base + "/health"),
                "nginx static JSON": wrk(
                    "http://127.0.0.1:%d/runners.json" % ng_port),
            }
    finally:
        if ng is not None:
            ng.send_signal(signal.SIGQUIT)
            ng.wait(10)
        tr.remove_managed()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d runners in the table, list body %d bytes; wrk %s" %
          (opts.n, len(body), " ".join(WRK[1:])))
    print("%-22s %12s %10s %8s" % ("", "requests/s", "p99 ms", "non-2xx"))
    for name, (rps, p99, bad) in res.items():
        print("%-22s %12.0f %10.2f %8d" % (name, rps, p99, bad))
    static = res["nginx static JSON"][0]
    for name in ("GET /api/v1/runners", "GET /health"):
        print("ratio %s / nginx static: %.2f" % (name, res[name][0] / static))


if __name__ == "__main__":
    main()
