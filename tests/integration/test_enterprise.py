"""GitHub Enterprise Server: an api_url of the form https://HOST/api/v3
behind a private certificate authority (github.ca_file).

The GitHub double speaks plain HTTP at its root, so it is put behind a
small TLS proxy here that serves https://127.0.0.1:PORT/api/v3/... with a
certificate of a CA made for the test by the openssl command."""

import http.client
import http.server
import os
import ssl
import subprocess
import threading

from harness import Daemon, check, wait_for
import test_runners as tr

PREFIX = "/api/v3"


def openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd,
                       capture_output=True, timeout=60)
    check(p.returncode == 0, "openssl %s: %r" % (args[0], p.stderr[-300:]))


def make_ca(tmp):
    """A CA, and a certificate it signed for 127.0.0.1; returns the paths
    of the CA's certificate, the server's certificate and its key."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=ephemerd test CA", "-keyout", "ca.key",
            "-out", "ca.pem", cwd=tmp)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj",
            "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr",
            cwd=tmp)
    with open(os.path.join(tmp, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem",
            "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", "san.ext", "-out", "server.pem", cwd=tmp)
    os.chmod(os.path.join(tmp, "ca.pem"), 0o644)
    return [os.path.join(tmp, x) for x in ("ca.pem", "server.pem",
                                            "server.key")]


class TLSProxy:
    """https://127.0.0.1:PORT/api/v3/X to the double's http://.../X."""

    def __init__(self, double, cert, key):
        self.double = double
        self.seen = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def relay(self):
                proxy.seen.append((self.command, self.path))
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                if not self.path.startswith(PREFIX + "/"):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection",
                                                "content-length")}
                c = http.client.HTTPConnection("127.0.0.1",
                                               proxy.double.port, timeout=30)
                c.request(self.command, self.path[len(PREFIX):], body=body,
                          headers=headers)
                r = c.getresponse()
                data = r.read()
                c.close()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() in ("connection", "transfer-encoding",
                                     "content-length", "server", "date"):
                        continue
                    if k.lower() == "link":
                        v = v.replace(proxy.double.url, proxy.url)
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket,
                                             server_side=True)
        self.url = "https://127.0.0.1:%d%s" % (self.server.server_port,
                                                PREFIX)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def point_at(d, proxy, ca_file=None):
    """The daemon's api_url at the proxy, and its github.ca_file."""
    d.github_yaml = "  ca_file: \"%s\"\n" % ca_file if ca_file else ""
    text = d.config_text()
    old = "  api_url: \"%s\"\n" % d.double.url
    check(old in text, "no api_url line in the test config")
    d.write(text=text.replace(old, "  api_url: \"%s\"\n" % proxy.url))


def github_health(d):
    r, body = d.api_health()
    procs = (body or {}).get("data", {}).get("processes") or {}
    return r.status, procs.get("poller", {}).get("github", {})


def test_enterprise_private_ca():
    tr.build_runner_image()
    tr.remove_managed()
    try:
        enterprise_private_ca()
    finally:
        tr.remove_managed()


def enterprise_private_ca():
    with Daemon(start=False, pools=tr.pool()) as d:
        ca, cert, key = make_ca(d.tmp)
        proxy = TLSProxy(d.double, cert, key)
        try:
            point_at(d, proxy, ca)
            d.start()
            wait_for(lambda: github_health(d)[0] == 200 and
                     github_health(d)[1].get("reachable") is True, 20,
                     "GitHub reachable through TLS")
            r = tr.post_runners(d, {"scope": "repo",
                                    "scope_name": "octo/hello",
                                    "count": 1})
            check(r.status == 201, "POST /api/v1/runners: %d %r" %
                  (r.status, r.body[:300]))
            name = r.json()["data"][0]["runner_id"]
            wait_for(lambda: tr.double_runners(d).get(name, {})
                     .get("online"), 30, "the runner online on the double")
            check(any(m == "POST" and p.endswith("/generate-jitconfig")
                      for m, p in proxy.seen),
                  "the registration did not go through %s: %r" %
                  (proxy.url, proxy.seen[-5:]))
        finally:
            proxy.close()


def test_enterprise_without_ca_file_is_a_tls_error():
    with Daemon(start=False, pools=tr.pool()) as d:
        _, cert, key = make_ca(d.tmp)
        proxy = TLSProxy(d.double, cert, key)
        try:
            point_at(d, proxy)
            d.start()
            wait_for(lambda: github_health(d)[0] == 503 and
                     github_health(d)[1].get("reachable") is False, 20,
                     "GitHub unreachable without the CA")
            r = tr.post_runners(d, {"scope": "repo",
                                    "scope_name": "octo/hello",
                                    "count": 1})
            text = r.body.decode("utf-8", "replace")
            check(r.status in (502, 503) and "certificate" in text,
                  "POST /api/v1/runners without the CA: %d %s" %
                  (r.status, text[:300]))
            lines = [x for x in d.log_lines() if "certificate" in x]
            check(lines, "no certificate error in the log: %s" %
                  d.tail(10))
            print("     refused: %s\n     logged: %s" % (text[:200],
                                                      lines[0][:200]))
            check(not proxy.seen, "requests went through without TLS "
                  "trust: %r" % proxy.seen[:3])
        finally:
            proxy.close()
