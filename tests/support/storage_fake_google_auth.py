#!/usr/bin/env python3
"""A FAKE of Google's credential endpoints, for the storage tests.

It is a fake because none of these servers can run off Google Cloud: the GCE/GKE metadata server
exists only on Google's hosts, and the OAuth token endpoint, the Security Token Service and the
IAM Credentials API only at googleapis.com. It serves the documented requests and checks each one
exactly as Google's client libraries send it:
  GET  /computeMetadata/v1/instance/service-accounts/default/token?scopes=<scope>
       needs "Metadata-Flavor: Google" (403 without, as the real server); answers
       access_token/expires_in/token_type with the response header Metadata-Flavor: Google.
       --metadata-fail N answers the first N with 503 (the GKE metadata server while it starts).
  GET  /subject   a subject token source of the "url" kind: needs "X-Subject: yes"; answers
       {"id_token": <content of --subject-token-file>}.
  POST /v1/token   STS token exchange (RFC 8693): grant_type, audience, scope,
       requested_token_type, subject_token_type, and subject_token equal to the content of
       --subject-token-file as it is at that moment (the tests rotate it).
  POST /v1/projects/-/serviceAccounts/<email>:generateAccessToken   IAM Credentials: needs a
       bearer token STS or the refresh grant issued; JSON {"scope": [...], "lifetime": "<n>s"},
       optionally "delegates": [...] (each must be listed by --delegate); answers
       accessToken/expireTime.
  POST /token   OAuth refresh_token grant for authorized_user files (--client-id,
       --client-secret, --refresh-token).
Tokens live --lifetime seconds. Every token issued is appended to --issued as "<token> <expiry
epoch>" (the fake GCS accepts those until they expire), every request to --log as a JSON line (method, path, query, form or JSON body, and the
headers that matter), so the tests can assert the exact requests. Standard library only.
"""
import argparse
import datetime
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
COUNTER = {"n": 0, "metadata": 0}
SOURCE_TOKENS = set()  # tokens allowed to impersonate: from STS and the refresh grant

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def issue(kind):
    with LOCK:
        COUNTER["n"] += 1
        token = "%s-token-%d" % (kind, COUNTER["n"])
        if ARGS.issued:
            with open(ARGS.issued, "a") as f:
                f.write("%s %d\n" % (token, int(time.time()) + ARGS.lifetime))
    return token


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, body):
        url = urllib.parse.urlsplit(self.path)
        entry = {"method": self.command, "path": url.path,
                 "query": urllib.parse.parse_qs(url.query), "body": body,
                 "headers": {k: self.headers.get(k) for k in (
                     "Metadata-Flavor", "Authorization", "Content-Type") if self.headers.get(k)}}
        if ARGS.log:
            with LOCK, open(ARGS.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def do_GET(self):
        self.record(None)
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/subject":
            if self.headers.get("X-Subject") != "yes":
                return self.reply(403, {"error": "no X-Subject header"})
            with open(ARGS.subject_token_file) as f:
                return self.reply(200, {"id_token": f.read().strip()})
        if url.path != "/computeMetadata/v1/instance/service-accounts/default/token":
            return self.reply(404, {"error": "not found"})
        if self.headers.get("Metadata-Flavor") != "Google":
            return self.reply(403, {"error": "Missing Metadata-Flavor:Google header"})
        with LOCK:
            COUNTER["metadata"] += 1
            failing = COUNTER["metadata"] <= ARGS.metadata_fail
        if failing:
            return self.reply(503, {"error": "metadata server starting"})
        return self.reply(200, {"access_token": issue("metadata"), "expires_in": ARGS.lifetime,
                                "token_type": "Bearer"}, {"Metadata-Flavor": "Google"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        url = urllib.parse.urlsplit(self.path)
        if self.headers.get("Content-Type") == "application/json":
            body = json.loads(raw or "null")
        else:
            body = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
        self.record(body)
        if url.path == "/v1/token":
            return self.sts(body)
        if url.path.startswith("/v1/projects/-/serviceAccounts/") and url.path.endswith(
                ":generateAccessToken"):
            return self.impersonate(body)
        if url.path == "/token":
            return self.refresh(body)
        return self.reply(404, {"error": "not found"})

    def sts(self, form):
        with open(ARGS.subject_token_file) as f:
            expected_subject = f.read().strip()
        wanted = {"grant_type": TOKEN_EXCHANGE, "audience": ARGS.audience,
                  "requested_token_type": ACCESS_TOKEN_TYPE,
                  "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                  "subject_token": expected_subject}
        for name, value in wanted.items():
            if form.get(name) != value:
                return self.reply(400, {"error": "invalid_request",
                                        "error_description": "wrong " + name})
        if not form.get("scope"):
            return self.reply(400, {"error": "invalid_scope", "error_description": "no scope"})
        token = issue("sts")
        with LOCK:
            SOURCE_TOKENS.add(token)
        return self.reply(200, {"access_token": token, "issued_token_type": ACCESS_TOKEN_TYPE,
                                "token_type": "Bearer", "expires_in": ARGS.lifetime})

    def impersonate(self, body):
        auth = self.headers.get("Authorization", "")
        with LOCK:
            known = auth.startswith("Bearer ") and auth[7:] in SOURCE_TOKENS
        if not known:
            return self.reply(401, {"error": {"code": 401, "message": "not a source token"}})
        if (not isinstance(body, dict) or not isinstance(body.get("scope"), list)
                or not body["scope"] or not str(body.get("lifetime", "")).endswith("s")):
            return self.reply(400, {"error": {"code": 400, "message": "scope and lifetime"}})
        delegates = body.get("delegates", [])
        if not isinstance(delegates, list) or any(d not in ARGS.delegate for d in delegates):
            return self.reply(403, {"error": {"code": 403, "message": "delegate not permitted"}})
        expire = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
            seconds=ARGS.lifetime)
        return self.reply(200, {"accessToken": issue("impersonated"),
                                "expireTime": expire.strftime("%Y-%m-%dT%H:%M:%SZ")})

    def refresh(self, form):
        wanted = {"grant_type": "refresh_token", "client_id": ARGS.client_id,
                  "client_secret": ARGS.client_secret, "refresh_token": ARGS.refresh_token}
        if any(form.get(k) != v for k, v in wanted.items()):
            return self.reply(400, {"error": "invalid_grant",
                                    "error_description": "Bad Request"})
        token = issue("user")
        with LOCK:
            SOURCE_TOKENS.add(token)
        return self.reply(200, {"access_token": token, "expires_in": ARGS.lifetime,
                                "token_type": "Bearer"})


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lifetime", type=int, default=3600)
    parser.add_argument("--issued")
    parser.add_argument("--log")
    parser.add_argument("--metadata-fail", type=int, default=0)
    parser.add_argument("--subject-token-file", default="/dev/null")
    parser.add_argument("--audience", default="")
    parser.add_argument("--client-id", default="")
    parser.add_argument("--client-secret", default="")
    parser.add_argument("--refresh-token", default="")
    parser.add_argument("--delegate", action="append", default=[],
                        help="a service account allowed in an impersonation's delegates")
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
