#!/usr/bin/env python3
"""A real HTTP/1.1 model server for the tests and the demo.

It answers the KServe v1 and v2 prediction routes, the v2 model repository API and a set of
test routes, and records every request it receives (one JSON line each) so tests can see what
the agent forwarded. Standard library only.

Routes:
  POST /v1/models/<m>:predict     {"predictions": <instances>} (echo), shaped by --predict
  POST /v2/models/<m>/infer       v2 echo: one output per input, same name/shape/datatype/data
                                  (answered with --infer-status)
  POST /v2/repository/models/<m>/load|unload   200 {} (recorded; --repo-status to change)
  GET  /stats                     {"connections": distinct client connections, "requests": n}
  ANY  /echo?status=&chunked=1&size=&delay_ms=&header=Name:Value&ctype=
  POST /graph/flaky?key=&fail=&status=   fails the first `fail` (1) requests of each key with
                                  `status` (503), then echoes the body
  POST /graph/success|error|echo|headers|reply?status=&body=&ctype=  (InferenceGraph models;
       delay_ms= on each: success 200 {"predictions":[{"message":"SUCCESS"}]}, error 404
       {"detail":"Intentional 404 code"} as upstream's e2e models, echo the body, headers the
       request headers as JSON, reply a given status and body)
            &trailer=Name:Value&announce=Name,Name
                                  echoes the body (or size bytes), with the given shape; a
                                  chunked answer ends with the trailer fields given (repeatable)
                                  and announces the names in `announce` in a Trailer field
  GET  /sse?n=3&interval_ms=50    text/event-stream, one event per interval
  GET  /upgrade                   101 Switching Protocols (Upgrade: echo), then echoes bytes
  ANY  /close                     closes the connection without answering
  ANY  /reset                     sends a partial response, then resets the connection
  anything else                   200 with a small JSON body naming the method and path

With --decode-path, routes are matched on the percent-decoded path (as Go and Starlette servers
do), so /v1/models/m%3Apredict is a predict route; the recorded path stays as received.
"""
import argparse
import base64
import json
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
CONNECTIONS = set()
REQUESTS = 0
FLAKY = {}  # /graph/flaky requests seen, by key


def record(handler, body):
    global REQUESTS
    with LOCK:
        REQUESTS += 1
        CONNECTIONS.add(handler.client_address)
        if ARGS.record:
            entry = {
                "time": time.time(),
                "method": handler.command,
                "path": handler.path,
                "headers": [[k, v] for k, v in handler.headers.items()],
                "body_b64": base64.b64encode(body).decode(),
                "trailers": handler.request_trailers,
                "peer": list(handler.client_address),
            }
            with open(ARGS.record, "a") as f:
                f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ksa-test-model"

    def log_message(self, fmt, *args):
        if ARGS.verbose:
            sys.stderr.write("model: " + (fmt % args) + "\n")

    def read_body(self):
        self.request_trailers = []
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while True:
                        line = self.rfile.readline()
                        if line in (b"\r\n", b"\n", b""):
                            break
                        name, _, value = line.decode("latin-1").partition(":")
                        self.request_trailers.append([name, value.strip()])
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status, body, ctype="application/json", extra=None, chunked=False,
             trailers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in (extra or []):
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            step = max(1, len(body) // 4)
            for i in range(0, len(body), step):
                part = body[i:i + step]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            fields = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in trailers)
            self.wfile.write(b"0\r\n" + fields + b"\r\n")
        else:
            if status not in (204, 304) and not (100 <= status < 200):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and status not in (204, 304):
                self.wfile.write(body)
        self.wfile.flush()

    def handle_any(self):
        body = self.read_body()
        record(self, body)
        url = urllib.parse.urlsplit(self.path)
        self.query_list = urllib.parse.parse_qsl(url.query)
        query = dict(self.query_list)
        path = urllib.parse.unquote(url.path) if ARGS.decode_path else url.path
        if path.endswith(":predict") and path.startswith("/v1/models/"):
            return self.predict(body)
        if path.startswith("/v2/models/") and path.endswith("/infer"):
            return self.infer(body)
        if path.startswith("/v2/repository/models/"):
            return self.send(ARGS.repo_status, b"{}")
        if path == "/stats":
            with LOCK:
                stats = {"connections": len(CONNECTIONS), "requests": REQUESTS}
            return self.send(200, json.dumps(stats).encode())
        if path == "/echo":
            return self.echo(body, query)
        if path.startswith("/graph/"):
            return self.graph_model(path[len("/graph/"):], body, query)
        if path == "/sse":
            return self.sse(query)
        if path == "/upgrade":
            return self.upgrade()
        if path == "/close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if path == "/reset":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            return None
        info = {"method": self.command, "path": self.path}
        return self.send(200, json.dumps(info).encode())

    def predict(self, body):
        if ARGS.predict_delay_ms:
            time.sleep(ARGS.predict_delay_ms / 1000.0)
        mode = ARGS.predict
        if mode == "hang":
            time.sleep(3600)
        if mode == "error":
            return self.send(500, b'{"error":"model failed"}')
        if mode == "garbage":
            return self.send(200, b"x-not-json")
        try:
            instances = json.loads(body)["instances"]
        except (ValueError, KeyError, TypeError):
            return self.send(400, b'{"error":"bad request"}')
        if mode == "mismatch":
            instances = instances[:-1]
        # Echo the raw text of the instances array so numbers keep their exact spelling.
        text = body.decode()
        start = text.index("[", text.index('"instances"'))
        depth, end = 0, start
        for i in range(start, len(text)):
            if text[i] == "[":
                depth += 1
            elif text[i] == "]":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
        raw = text[start:end] if mode == "echo" else json.dumps(instances)
        return self.send(200, ('{"predictions":' + raw + "}").encode())

    def infer(self, body):
        if ARGS.predict_delay_ms:
            time.sleep(ARGS.predict_delay_ms / 1000.0)
        try:
            request = json.loads(body)
        except ValueError:
            return self.send(400, b'{"error":"bad request"}')
        outputs = [{"name": "out_" + i["name"], "shape": i["shape"], "datatype": i["datatype"],
                    "data": i["data"]} for i in request.get("inputs", [])]
        reply = {"model_name": self.path.split("/")[3], "outputs": outputs}
        if "id" in request:
            reply["id"] = request["id"]
        return self.send(ARGS.infer_status, json.dumps(reply).encode())

    def echo(self, body, query):
        if "delay_ms" in query:
            time.sleep(int(query["delay_ms"]) / 1000.0)
        if "size" in query:
            size = int(query["size"])
            pattern = bytes(range(256))
            body = (pattern * (size // 256 + 1))[:size]
        extra = []
        if "header" in query:
            name, _, value = query["header"].partition(":")
            extra.append((name, value))
        if "announce" in query:
            extra.append(("Trailer", query["announce"]))
        trailers = [v.partition(":")[::2] for k, v in self.query_list if k == "trailer"]
        ctype = query.get("ctype") or self.headers.get("Content-Type") or "application/octet-stream"
        return self.send(int(query.get("status", 200)), body, ctype, extra,
                         chunked=query.get("chunked") == "1", trailers=trailers)

    def graph_model(self, name, body, query):
        """The InferenceGraph e2e models and a few more, one per path (/graph/<name>)."""
        if "delay_ms" in query:
            time.sleep(int(query["delay_ms"]) / 1000.0)
        if name == "success":
            return self.send(200, b'{"predictions":[{"message":"SUCCESS"}]}')
        if name == "error":
            return self.send(404, b'{"detail":"Intentional 404 code"}')
        if name == "echo":
            return self.send(int(query.get("status", 200)), body,
                             self.headers.get("Content-Type") or "application/octet-stream")
        if name == "headers":
            headers = {}
            for k, v in self.headers.items():
                headers.setdefault(k, []).append(v)
            return self.send(200, json.dumps({"headers": headers}).encode())
        if name == "flaky":
            # Fails the first `fail` requests of each `key` with `status`, then echoes.
            key = query.get("key", "")
            with LOCK:
                seen = FLAKY.get(key, 0)
                FLAKY[key] = seen + 1
            if seen < int(query.get("fail", 1)):
                return self.send(int(query.get("status", 503)), b'{"error":"flaky"}')
            return self.send(200, body, "application/json")
        if name == "reply":
            return self.send(int(query.get("status", 200)), query.get("body", "").encode(),
                             query.get("ctype", "application/json"))
        return self.send(404, b'{"detail":"no such graph model"}')

    def sse(self, query):
        count = int(query.get("n", 3))
        interval = int(query.get("interval_ms", 50)) / 1000.0
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(count):
            event = ("data: event %d\n\n" % i).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
            time.sleep(interval)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def upgrade(self):
        self.send_response(101)
        self.send_header("Upgrade", "echo")
        self.send_header("Connection", "Upgrade")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            data = self.connection.recv(65536)
            if not data:
                break
            self.connection.sendall(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--record", help="append one JSON line per request to this file")
    parser.add_argument("--predict", default="echo",
                        choices=["echo", "reencode", "error", "garbage", "mismatch", "hang"])
    parser.add_argument("--predict-delay-ms", type=int, default=0)
    parser.add_argument("--repo-status", type=int, default=200)
    parser.add_argument("--infer-status", type=int, default=200,
                        help="status of the v2 infer answers")
    parser.add_argument("--decode-path", action="store_true",
                        help="match routes on the percent-decoded path")
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="and this key")
    parser.add_argument("--verbose", action="store_true")
    ARGS = parser.parse_args()
    server = Server((ARGS.host, ARGS.port), Handler)
    if ARGS.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("model server listening on %s:%d" % (ARGS.host, ARGS.port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
