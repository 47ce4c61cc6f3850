#!/usr/bin/env python3
"""A FAKE S3 that checks every request's SigV4 signature with botocore (Debian python3-botocore),
the signer boto3 and so upstream's initializer use.

It exists because s3rver, the real S3 server of the other tests, checks only that the access key
id is known, never the signature or the session token. For each request this rebuilds the
request as received, restricted to the headers its Authorization header says were signed (as
S3 does), lets botocore's S3SigV4Auth sign it with --access-key/--secret-key/--session-token at
the request's own X-Amz-Date, and requires the same Authorization header, byte for byte. Host,
x-amz-date and x-amz-content-sha256 must be signed, and x-amz-security-token too when a session
token is expected. A mismatch answers 403 SignatureDoesNotMatch (or InvalidToken) as S3 does.

Objects are the files below --root/<bucket>/ (path style). It serves:
  GET /<bucket>?list-type=2&prefix=P      ListObjectsV2 (one page)
  GET /<bucket>/<key>                     GetObject (Range: bytes=A-B answers 206 with that part)
--bucket-region R answers 301 PermanentRedirect with x-amz-bucket-region R to requests signed for
another region; --slow-down N answers the first N object GETs 503 SlowDown; --ignore-range
answers ranged GETs with the whole object, as a server without range support would;
--shift-range answers a range one byte later than asked; --fail-after OK FAILED answers OK
object GETs, then FAILED with 500, then the rest; listings give an ETag that changes when a file
is replaced; --peak-file keeps the most object GETs
served at once.
Each verified request is appended to --log as a JSON line (method, raw path, signed headers,
Range header).
"""
import argparse
import json
import os
import re
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ARGS = None
SLOW_DOWN_LEFT = 0
IN_FLIGHT = 0
SERVED = 0
PEAK = 0
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body, content_type="application/xml"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def error(self, status, code, message):
        self.answer(status, "<Error><Code>%s</Code><Message>%s</Message></Error>"
                    % (code, escape(message)))

    def verify(self):
        """None when botocore computes the same signature, else (code, message)."""
        received = self.headers.get("Authorization", "")
        if not received.startswith("AWS4-HMAC-SHA256 "):
            return ("AccessDenied", "not a SigV4 request")
        fields = dict(part.strip().split("=", 1) for part in received[17:].split(","))
        signed = fields.get("SignedHeaders", "").split(";")
        required = {"host", "x-amz-date", "x-amz-content-sha256"}
        if ARGS.session_token:
            required.add("x-amz-security-token")
        if not required.issubset(signed):
            return ("AccessDenied", "unsigned: %s" % sorted(required - set(signed)))
        if ARGS.session_token and self.headers.get("X-Amz-Security-Token") != ARGS.session_token:
            return ("InvalidToken", "The provided token is malformed or otherwise invalid.")
        headers = {name: self.headers.get(name, "") for name in signed}
        # The query as S3 reads it: decoded, then canonically re-encoded by botocore, so an
        # encoding that differs from SigV4's on the wire is caught.
        split = urllib.parse.urlsplit(self.path)
        request = AWSRequest(method=self.command,
                             url="%s://%s%s" % ("https" if ARGS.cert else "http", self.headers.get("Host"), split.path),
                             headers=headers, data=b"",
                             params=urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        request.context["timestamp"] = self.headers.get("X-Amz-Date", "")
        region = fields.get("Credential", "").split("/")[2] if "/" in received else ""
        auth = S3SigV4Auth(Credentials(ARGS.access_key, ARGS.secret_key, ARGS.session_token or None),
                           "s3", region)
        auth._modify_request_before_signing(request)
        # botocore computes the payload hash itself: the empty body of a GET.
        canonical = auth.canonical_request(request)
        signature = auth.signature(auth.string_to_sign(request, canonical), request)
        expected = auth._inject_signature_to_request(request, signature).headers["Authorization"]
        if expected != received:
            return ("SignatureDoesNotMatch", "The request signature we calculated does not match "
                    "the signature you provided.")
        if ARGS.log:
            with open(ARGS.log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"method": self.command, "path": self.path,
                                    "signed": signed,
                                    "range": self.headers.get("Range")}) + "\n")
        return None

    def do_GET(self):
        failure = self.verify()
        if failure:
            return self.error(403, *failure)
        scope_region = self.headers.get("Authorization", "").split("Credential=")[-1].split("/")[2]
        if ARGS.bucket_region and scope_region != ARGS.bucket_region:
            # What S3 answers a request signed for the wrong region of a bucket.
            self.send_response(301)
            self.send_header("x-amz-bucket-region", ARGS.bucket_region)
            body = ("<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting "
                    "to access must be addressed using the specified endpoint.</Message></Error>")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())
            return None
        global SLOW_DOWN_LEFT, SERVED
        if "list-type" not in self.path and ARGS.fail_after:
            with LOCK:
                SERVED += 1
                served = SERVED
            if ARGS.fail_after[0] < served <= sum(ARGS.fail_after):
                return self.error(500, "InternalError", "We encountered an internal error.")
        if "list-type" not in self.path and SLOW_DOWN_LEFT > 0:
            SLOW_DOWN_LEFT -= 1
            return self.error(503, "SlowDown", "Please reduce your request rate.")
        split = urllib.parse.urlsplit(self.path)
        parts = split.path.lstrip("/").split("/", 1)
        bucket = urllib.parse.unquote(parts[0])
        base = os.path.join(ARGS.root, bucket)
        if not os.path.isdir(base):
            return self.error(404, "NoSuchBucket", "The specified bucket does not exist")
        if len(parts) == 1 or parts[1] == "":
            query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
            prefix = query.get("prefix", "")
            keys = []
            for folder, _, files in os.walk(base):
                for name in files:
                    key = os.path.relpath(os.path.join(folder, name), base).replace(os.sep, "/")
                    if key.startswith(prefix):
                        stat = os.stat(os.path.join(folder, name))
                        # A new ETag whenever the file is replaced, as S3 gives a new object one.
                        keys.append((key, stat.st_size, "&quot;%x-%x&quot;" % (stat.st_mtime_ns, stat.st_ino)))
            contents = "".join("<Contents><Key>%s</Key><Size>%d</Size><ETag>%s</ETag></Contents>"
                               % (escape(k), s, e) for k, s, e in sorted(keys))
            return self.answer(200, "<ListBucketResult><Name>%s</Name><IsTruncated>false"
                               "</IsTruncated>%s</ListBucketResult>" % (escape(bucket), contents))
        path = os.path.join(base, urllib.parse.unquote(parts[1]))
        if not os.path.isfile(path):
            return self.error(404, "NoSuchKey", "The specified key does not exist.")
        global IN_FLIGHT, PEAK
        with LOCK:
            IN_FLIGHT += 1
            PEAK = max(PEAK, IN_FLIGHT)
        try:
            self.object(path)
        finally:
            with LOCK:
                IN_FLIGHT -= 1
                if ARGS.peak_file:
                    with open(ARGS.peak_file, "w", encoding="utf-8") as f:
                        f.write(str(PEAK))

    def object(self, path):
        with open(path, "rb") as f:
            data = f.read()
        ranged = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if not ranged or ARGS.ignore_range:
            return self.answer(200, data, "application/octet-stream")
        first, last = int(ranged.group(1)), min(int(ranged.group(2)), len(data) - 1)
        if ARGS.shift_range:
            first += 1
        if first >= len(data):
            return self.error(416, "InvalidRange", "The requested range is not satisfiable")
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", "bytes %d-%d/%d" % (first, last, len(data)))
        self.send_header("Content-Length", str(last - first + 1))
        self.end_headers()
        self.wfile.write(data[first:last + 1])


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--session-token", default="")
    parser.add_argument("--log")
    parser.add_argument("--cert", help="serve https with this certificate (and --key)")
    parser.add_argument("--key")
    parser.add_argument("--bucket-region", help="301 PermanentRedirect for any other region")
    parser.add_argument("--slow-down", type=int, default=0,
                        help="answer this many object GETs with 503 SlowDown first")
    parser.add_argument("--fail-after", type=int, nargs=2, metavar=("OK", "FAILED"),
                        help="answer OK object GETs, then FAILED of them 500, then the rest")
    parser.add_argument("--shift-range", action="store_true",
                        help="answer ranged GETs with the range one byte later than asked")
    parser.add_argument("--peak-file",
                        help="keep the most object GETs served at once in this file")
    parser.add_argument("--ignore-range", action="store_true",
                        help="answer ranged GETs with the whole object (200), as servers "
                             "without range support do")
    ARGS = parser.parse_args()
    global SLOW_DOWN_LEFT
    SLOW_DOWN_LEFT = ARGS.slow_down
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    if ARGS.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(ARGS.cert, ARGS.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
