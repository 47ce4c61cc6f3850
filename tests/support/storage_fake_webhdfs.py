#!/usr/bin/env python3
"""A WebHDFS fake for the storage tests: a namenode and a datanode on two loopback ports.

Debian ships no Hadoop (and PyPI is out of reach), so the tests need this. It follows the
documented REST API (https://hadoop.apache.org/docs/stable/hadoop-project-dist/hadoop-hdfs/WebHDFS.html):
  namenode  GET /webhdfs/v1<path>?op=GETFILESTATUS | LISTSTATUS | GETHOMEDIRECTORY
            GET /webhdfs/v1<path>?op=OPEN  → 307, Location on the datanode (with
                namenoderpcaddress, offset and a one-time ticket standing for the delegation token)
  datanode  GET /webhdfs/v1<path>?op=OPEN&...  → the bytes (only with a ticket the namenode issued)
Errors are RemoteException JSON. Files are those below --root. Every request is logged as one
JSON line to --log (port role, op, path, user.name, doas, chosen headers) for the tests to check.
--tls-cert/--tls-key serve https on both ports; --client-ca then requires a client certificate.
--home sets GETHOMEDIRECTORY's answer; --require-user refuses requests without that user.name.
--spnego-keytab makes the namenode require Kerberos SPNEGO ("Authorization: Negotiate"), accepted
with python3-gssapi against that keytab (HTTP/<host>@REALM from a real MIT KDC); the caller's
principal is logged as "principal". The datanode trusts the namenode's ticket, as Hadoop's
datanodes trust its delegation token.
"""
import base64
import argparse
import http.server
import json
import os
import secrets
import ssl
import sys
import threading
import urllib.parse


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--namenode-port", type=int, required=True)
    p.add_argument("--datanode-port", type=int, required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--home", default="/user/hdfs")
    p.add_argument("--require-user")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--client-ca")
    p.add_argument("--spnego-keytab")
    args = p.parse_args()
    gssapi = None
    if args.spnego_keytab:
        os.environ["KRB5_KTNAME"] = args.spnego_keytab
        import gssapi
    tickets = {}
    lock = threading.Lock()
    scheme = "https" if args.tls_cert else "http"

    def local(path):
        full = os.path.normpath(os.path.join(args.root, path.lstrip("/")))
        if full != args.root and not full.startswith(args.root + os.sep):
            return None
        return full

    def status_of(full, suffix):
        st = os.stat(full)
        return {"pathSuffix": suffix, "type": "DIRECTORY" if os.path.isdir(full) else "FILE",
                "length": 0 if os.path.isdir(full) else st.st_size, "owner": "hdfs",
                "group": "supergroup", "permission": "755", "replication": 1,
                "blockSize": 134217728, "modificationTime": int(st.st_mtime * 1000),
                "accessTime": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        role = "namenode"

        def log_message(self, *a):
            pass

        def send_json(self, code, value):
            body = json.dumps(value).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def remote(self, code, exception, message):
            self.send_json(code, {"RemoteException": {
                "exception": exception, "javaClassName": "org.apache.hadoop." + exception,
                "message": message}})

        def negotiate(self):
            """The SPNEGO initiator's principal, or None after answering 401."""
            header = self.headers.get("Authorization", "")
            if header.startswith("Negotiate "):
                try:
                    context = gssapi.SecurityContext(
                        creds=gssapi.Credentials(usage="accept"), usage="accept")
                    context.step(base64.b64decode(header[len("Negotiate "):]))
                    if context.complete:
                        return str(context.initiator_name)
                except gssapi.exceptions.GSSError:
                    pass
            body = json.dumps({"RemoteException": {
                "exception": "security.AccessControlException",
                "javaClassName": "org.apache.hadoop.security.AccessControlException",
                "message": "Authentication required"}}).encode()
            self.send_response(401)
            self.send_header("WWW-Authenticate", "Negotiate")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            path = urllib.parse.unquote(url.path)
            op = query.get("op", "")
            principal = None
            if gssapi is not None and self.role == "namenode":
                principal = self.negotiate()
                if principal is None:
                    return
            with lock, open(args.log, "a") as f:
                f.write(json.dumps({"role": self.role, "op": op, "path": path,
                                    "user.name": query.get("user.name"),
                                    "doas": query.get("doas"), "principal": principal,
                                    "x-extra": self.headers.get("X-Extra")}) + "\n")
            if not path.startswith("/webhdfs/v1/") and path != "/webhdfs/v1":
                return self.remote(404, "IllegalArgumentException", "not a WebHDFS path")
            hdfs_path = path[len("/webhdfs/v1"):] or "/"
            if args.require_user and query.get("user.name") != args.require_user:
                return self.remote(401, "security.AccessControlException",
                                   "Permission denied: no user.name")
            if self.role == "datanode":
                with lock:
                    expected = tickets.pop(query.get("ticket", ""), None)
                full = local(hdfs_path)
                if op != "OPEN" or expected != hdfs_path or full is None or not os.path.isfile(full):
                    return self.remote(403, "security.token.SecretManager$InvalidToken",
                                       "no valid ticket for " + hdfs_path)
                with open(full, "rb") as fh:
                    data = fh.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            if op == "GETHOMEDIRECTORY":
                return self.send_json(200, {"Path": args.home})
            full = local(hdfs_path)
            if full is None or not os.path.exists(full):
                return self.remote(404, "FileNotFoundException",
                                   "File does not exist: " + hdfs_path)
            if op == "GETFILESTATUS":
                return self.send_json(200, {"FileStatus": status_of(full, "")})
            if op == "LISTSTATUS":
                if os.path.isdir(full):
                    entries = [status_of(os.path.join(full, n), n) for n in sorted(os.listdir(full))]
                else:
                    entries = [status_of(full, "")]
                return self.send_json(200, {"FileStatuses": {"FileStatus": entries}})
            if op == "OPEN":
                if os.path.isdir(full):
                    return self.remote(404, "FileNotFoundException", "Path is not a file: " + hdfs_path)
                ticket = secrets.token_hex(8)
                with lock:
                    tickets[ticket] = hdfs_path
                location = (f"{scheme}://127.0.0.1:{args.datanode_port}/webhdfs/v1"
                            f"{urllib.parse.quote(hdfs_path)}?op=OPEN&namenoderpcaddress=nn:8020"
                            f"&offset=0&ticket={ticket}")
                # The namenode passes the caller's identity on, as with simple authentication.
                for key in ("user.name", "doas"):
                    if key in query:
                        location += "&" + urllib.parse.urlencode({key: query[key]})
                self.send_response(307)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            return self.remote(400, "IllegalArgumentException", "Invalid value for op: " + op)

    class DataHandler(Handler):
        role = "datanode"

    servers = []
    for port, handler in ((args.namenode_port, Handler), (args.datanode_port, DataHandler)):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        if args.tls_cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(args.tls_cert, args.tls_key)
            if args.client_ca:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(args.client_ca)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        servers.append(server)
    threading.Thread(target=servers[1].serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    sys.exit(main())
