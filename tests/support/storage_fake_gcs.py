#!/usr/bin/env python3
"""A FAKE of the Google Cloud Storage JSON API and of Google's OAuth token endpoint, for tests.

It is a fake because no GCS server package is available to run on loopback (fake-gcs-server
and the emulator are not packaged here). It follows the documented API paths:
  GET  /storage/v1/b/<bucket>/o?prefix=...&pageToken=...   listing: items[].name, nextPageToken
  GET  /storage/v1/b/<bucket>/o/<url-encoded object>?alt=media   media download (Range:
                bytes=A-B answers 206 with that part, as GCS does)
  POST /upload/storage/v1/b/<bucket>/o?uploadType=media&name=<object>   media upload (the
                body is the object; --fail-uploads N answers the first N with 503)
  POST /token   OAuth 2.0 JWT bearer grant (RFC 7523): the RS256 assertion is verified with the
                `openssl` CLI against --public-key, then an access token is issued
Objects are the files below --root/<bucket>/. With --require-token every storage request must
carry "Authorization: Bearer <that token>" or an unexpired one listed in --accept-tokens (a file
the fake of Google's credential endpoints appends to); --media-delay slows each object download; --auth-log records the bearer token (and
Range header) of each storage request. Standard library only.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from storage_ranges import send_file

ARGS = None
ISSUED = set()
UPLOADS_SEEN = 0


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_jwt(assertion):
    header_b64, claims_b64, signature_b64 = assertion.split(".")
    header = json.loads(b64url_decode(header_b64))
    claims = json.loads(b64url_decode(claims_b64))
    if header.get("alg") != "RS256":
        return None, "alg is not RS256"
    with tempfile.TemporaryDirectory() as tmp:
        data, sig = os.path.join(tmp, "data"), os.path.join(tmp, "sig")
        with open(data, "wb") as f:
            f.write((header_b64 + "." + claims_b64).encode())
        with open(sig, "wb") as f:
            f.write(b64url_decode(signature_b64))
        result = subprocess.run(["openssl", "dgst", "-sha256", "-verify", ARGS.public_key,
                                 "-signature", sig, data], capture_output=True)
    if result.returncode != 0:
        return None, "bad signature"
    now = time.time()
    if not (claims.get("iat", 0) - 60 <= now <= claims.get("exp", 0)):
        return None, "expired"
    if "devstorage" not in claims.get("scope", ""):
        return None, "scope"
    return claims, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if ARGS.verbose:
            sys.stderr.write("fake-gcs: " + (fmt % args) + "\n")

    def reply(self, status, body, ctype="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.startswith("/upload/"):
            return self.upload(body)
        form = urllib.parse.parse_qs(body.decode())
        if self.path != "/token" or form.get("grant_type") != [
                "urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return self.reply(400, {"error": "unsupported_grant_type"})
        claims, error = verify_jwt(form.get("assertion", [""])[0])
        if claims is None:
            return self.reply(400, {"error": "invalid_grant", "error_description": error})
        token = "fake-token-%d" % len(ISSUED)
        ISSUED.add(token)
        with open(ARGS.token_log, "a") if ARGS.token_log else open(os.devnull, "w") as log:
            log.write(json.dumps(claims) + "\n")
        return self.reply(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def authorized(self):
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if ARGS.auth_log:
            with open(ARGS.auth_log, "a") as log:
                log.write(json.dumps({"path": self.path.split("?")[0], "token": token,
                                      "range": self.headers.get("Range")}) + "\n")
        if not ARGS.require_token:
            return True
        if token in ISSUED:
            return True
        if ARGS.accept_tokens and os.path.exists(ARGS.accept_tokens):
            with open(ARGS.accept_tokens) as accepted:
                for line in accepted:
                    fields = line.split()
                    # "<token> [<expiry epoch>]": an expired token is refused, as GCS does.
                    if fields and fields[0] == token and (
                            len(fields) < 2 or time.time() < int(fields[1])):
                        return True
        return False

    def refuse(self):
        # The messages GCS gives without a token and with one it does not accept.
        if self.headers.get("Authorization", "").startswith("Bearer "):
            message = "Invalid Credentials"
        else:
            message = "Anonymous caller does not have storage.objects.list access"
        return self.reply(401, {"error": {"code": 401, "message": message}})

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        parts = url.path.split("/")
        # ['', 'storage', 'v1', 'b', bucket, 'o', (object)]
        if len(parts) < 6 or parts[1:4] != ["storage", "v1", "b"] or parts[5] != "o":
            return self.reply(404, {"error": {"code": 404, "message": "Not Found"}})
        if not self.authorized():
            return self.refuse()
        bucket = urllib.parse.unquote(parts[4])
        bucket_dir = os.path.join(ARGS.root, bucket)
        if not os.path.isdir(bucket_dir):
            return self.reply(404, {"error": {"code": 404, "message": "bucket not found"}})
        if len(parts) == 6:
            return self.list(bucket_dir, query)
        name = urllib.parse.unquote("/".join(parts[6:]))
        path = os.path.join(bucket_dir, name)
        if query.get("alt") != ["media"] or not os.path.isfile(path):
            return self.reply(404, {"error": {"code": 404, "message": "No such object"}})
        time.sleep(ARGS.media_delay)
        send_file(self, path)

    def upload(self, body):
        global UPLOADS_SEEN
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        parts = url.path.split("/")
        # ['', 'upload', 'storage', 'v1', 'b', bucket, 'o']
        if len(parts) != 7 or parts[1:5] != ["upload", "storage", "v1", "b"] or parts[6] != "o":
            return self.reply(404, {"error": {"code": 404, "message": "Not Found"}})
        if query.get("uploadType") != ["media"] or len(query.get("name", [])) != 1:
            return self.reply(400, {"error": {"code": 400, "message": "uploadType=media and name"}})
        if not self.authorized():
            return self.refuse()
        UPLOADS_SEEN += 1
        if UPLOADS_SEEN <= ARGS.fail_uploads:
            return self.reply(503, {"error": {"code": 503, "message": "Backend Error"}})
        bucket_dir = os.path.join(ARGS.root, urllib.parse.unquote(parts[5]))
        if not os.path.isdir(bucket_dir):
            return self.reply(404, {"error": {"code": 404, "message": "bucket not found"}})
        name = query["name"][0]
        path = os.path.normpath(os.path.join(bucket_dir, name))
        if not path.startswith(bucket_dir + os.sep):
            return self.reply(400, {"error": {"code": 400, "message": "bad object name"}})
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(body)
        if ARGS.upload_log:
            with open(ARGS.upload_log, "a") as log:
                log.write(json.dumps({"name": name, "contentType": self.headers.get(
                    "Content-Type", ""), "size": len(body)}) + "\n")
        return self.reply(200, {"kind": "storage#object", "bucket": parts[5], "name": name,
                                "size": str(len(body))})

    def list(self, bucket_dir, query):
        prefix = query.get("prefix", [""])[0]
        names = []
        for dirpath, _, files in os.walk(bucket_dir):
            for file in files:
                rel = os.path.relpath(os.path.join(dirpath, file), bucket_dir).replace(os.sep, "/")
                if rel.startswith(prefix):
                    names.append(rel)
        names.sort()
        start = int(query.get("pageToken", ["0"])[0])
        page = names[start:start + ARGS.page_size]
        body = {"kind": "storage#objects", "items": [
            {"kind": "storage#object", "name": n,
             "size": str(os.path.getsize(os.path.join(bucket_dir, n)))} for n in page]}
        if start + ARGS.page_size < len(names):
            body["nextPageToken"] = str(start + ARGS.page_size)
        return self.reply(200, body)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--page-size", type=int, default=2)
    parser.add_argument("--public-key", help="PEM public key that verifies JWT assertions")
    parser.add_argument("--require-token", action="store_true")
    parser.add_argument("--accept-tokens",
                        help="file of further bearer tokens to accept: '<token> [<expiry>]' lines")
    parser.add_argument("--media-delay", type=float, default=0,
                        help="seconds to wait before each object download answers")
    parser.add_argument("--auth-log", help="append the bearer token of each storage request")
    parser.add_argument("--token-log", help="append the claims of each verified JWT here")
    parser.add_argument("--fail-uploads", type=int, default=0,
                        help="answer the first N uploads with 503")
    parser.add_argument("--upload-log", help="append a JSON line per stored upload here")
    parser.add_argument("--verbose", action="store_true")
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
