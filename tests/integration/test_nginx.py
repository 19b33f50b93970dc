"""The REST API through a real nginx with the site configuration of
deploy/nginx/ephemerd.conf (TLS with a self-signed certificate)."""

import http.client
import os
import re
import signal
import ssl
import subprocess
import time

from harness import SRCDIR, TestFailure, check, free_port, wait_for
from test_api import TOKEN, api_daemon, bearer

SITE = os.path.join(SRCDIR, "deploy", "nginx", "ephemerd.conf")


class Nginx:
    """nginx with the site config rewritten for test ports and a cert."""

    def __init__(self, tmp, upstream_port):
        self.dir = os.path.join(tmp, "nginx")
        os.makedirs(self.dir)
        self.http_port = free_port()
        self.https_port = free_port()
        cert = os.path.join(self.dir, "cert.pem")
        key = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", cert, "-days",
                        "1", "-subj", "/CN=localhost"], check=True,
                       capture_output=True, timeout=60)
        with open(SITE, encoding="utf-8") as f:
            site = f.read()
        site = site.replace("server 127.0.0.1:8080;",
                            "server 127.0.0.1:%d;" % upstream_port)
        site = re.sub(r"listen \[::\]:\d+[^;]*;", "", site)
        site = site.replace("listen 80;", "listen 127.0.0.1:%d;" %
                            self.http_port)
        site = site.replace("listen 443 ssl http2;",
                            "listen 127.0.0.1:%d ssl;" % self.https_port)
        site = re.sub(r"ssl_certificate .*;", "ssl_certificate %s;" % cert,
                      site)
        site = re.sub(r"ssl_certificate_key .*;",
                      "ssl_certificate_key %s;" % key, site)
        check("ssl_certificate %s;" % cert in site, "site rewrite failed")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write("worker_processes 1;\n"
                    "pid %(d)s/nginx.pid;\n"
                    "error_log %(d)s/error.log;\n"
                    "events { worker_connections 256; }\n"
                    "http {\n"
                    "  access_log %(d)s/access.log;\n"
                    "  client_body_temp_path %(d)s/body;\n"
                    "  proxy_temp_path %(d)s/proxy;\n"
                    "%(site)s\n}\n" % {"d": self.dir, "site": site})
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-g",
                                      "daemon off;"],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_for(self.up, 10, "nginx to listen")

    def up(self):
        if self.proc.poll() is not None:
            raise TestFailure("nginx exited: %r" % self.proc.stderr.read())
        try:
            self.request("GET", "/healthz")
            return True
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", self.https_port,
                                           timeout=10, context=ctx)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, \
                r.read()
        finally:
            conn.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()


def test_through_nginx():
    extra = ("  api_tokens: [%s]\n"
             "  rate_limit: {rate: 1, burst: 3}\n"
             "  trusted_proxies: [127.0.0.1]\n" % TOKEN)
    with api_daemon(extra) as d:
        ng = Nginx(d.tmp, d.port)
        try:
            status, _, body = ng.request("GET", "/health")
            check(status == 200 and b'"success"' in body,
                  "health through nginx: %d" % status)
            status, hdrs, _ = ng.request("GET",
                                         "/api/v1/runners/github-status")
            check(status == 401 and "www-authenticate" in hdrs,
                  "auth through nginx: %d" % status)
            status, _, body = ng.request("POST", "/api/v1/runners",
                                         body=b"x" * (80 * 1024), headers={
                                             "Content-Type":
                                             "application/json"})
            check(status == 413, "nginx's body limit: %d" % status)
            status, _, body = ng.request("GET", "/openapi.json")
            check(status == 200 and b'"openapi"' in body, "openapi via nginx")

            # Two clients behind nginx: one bucket each, by X-Forwarded-For.
            def burst(xff):
                return [ng.request("GET", "/api/v1/runners", headers=dict(
                    bearer(TOKEN), **{"X-Forwarded-For": xff}))[0]
                    for _ in range(4)]
            a = burst("198.51.100.10")
            b = burst("198.51.100.11")
            check(a == [200, 200, 200, 429], "client a via nginx: %r" % a)
            check(b == [200, 200, 200, 429], "client b via nginx: %r" % b)
            status, hdrs, _ = ng.request("GET", "/api/v1/runners",
                                         headers=dict(bearer(TOKEN), **{
                                             "X-Forwarded-For":
                                             "198.51.100.10"}))
            check(status == 429 and hdrs.get("retry-after"),
                  "429 with Retry-After via nginx")
            # Without a header of its own the client is nginx's peer.
            d.wait_log(r"REQUEST httpd: GET /api/v1/runners from "
                       r"198\.51\.100\.11$", 3)
            status, _, _ = ng.request("GET", "/api/v1/runners",
                                      headers=bearer(TOKEN))
            check(status == 200, "the peer 127.0.0.1 has its own bucket")
        finally:
            ng.stop()
