#!/usr/bin/env python3
"""A FAKE of the three AWS credential services a pod may use, for the storage tests.

No real server exists for these off AWS: STS AssumeRoleWithWebIdentity needs an OIDC issuer AWS
trusts, the EKS Pod Identity agent and the EC2 instance metadata service exist only on AWS hosts
(MinIO, which has an STS, is not packaged in Debian). So this serves the documented requests and
checks each one the way the AWS SDKs send it; a request that differs gets the error answer the
real service gives, with the reason in the message, so a test sees the difference.

  POST /                       STS AssumeRoleWithWebIdentity (form fields Action, Version,
                               RoleArn, RoleSessionName, WebIdentityToken = the token file now)
  POST /                       STS AssumeRole (RoleArn one of --assume-role, ExternalId =
                               --external-id when given), SigV4-signed for service sts with
                               --source-access-key/--source-secret-key, or with credentials this
                               fake issued by any service (their session token signed too): a
                               role chain, or a role over container or instance credentials. The
                               signature is recomputed (storage_sigv4_s3.expected_signature)
  GET  /v1/credentials         container credentials (Authorization = the token file now)
  PUT  /latest/api/token       IMDSv2 session token (X-aws-ec2-metadata-token-ttl-seconds)
  GET  /latest/meta-data/iam/security-credentials/[role]   IMDS role list / role credentials

Every answer carries --access-key/--secret-key, a new session token per issue
("<source>-token-<n>"), and an expiry --lifetime seconds ahead. Each request is appended to
--log as a JSON line (method, path, lower-case headers, form fields).
"""
import argparse
import datetime
import hashlib
import hmac
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from storage_sigv4_s3 import expected_signature

ARGS = None
LOCK = threading.Lock()
ISSUED = {"sts": 0, "container": 0, "imds": 0}
IMDS_TOKENS = set()
SESSION_TOKENS = set()  # every session token issued, by any of the three services


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def expiration():
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=ARGS.lifetime)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def issue(kind):
    with LOCK:
        ISSUED[kind] += 1
        token = "%s-token-%d" % (kind, ISSUED[kind])
        SESSION_TOKENS.add(token)
        return token


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body, content_type):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, form, **extra):
        if not ARGS.log:
            return
        entry = {"method": self.command, "path": self.path,
                 "headers": {k.lower(): v for k, v in self.headers.items()}, "form": form}
        entry.update(extra)
        with LOCK, open(ARGS.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def sts_error(self, status, code, message):
        self.answer(status, "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code>"
                    "<Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>"
                    % (code, message), "text/xml")

    def signer(self, raw_body):
        """The access key id that signed this request for STS, or None after answering the error
        STS gives."""
        match = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/([^/]+/[^/]+/([^/]+)/aws4_request),"
                             r" ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})",
                             self.headers.get("Authorization", ""))
        if not match:
            self.sts_error(400, "MissingAuthenticationToken", "Request is missing Authentication Token")
            return None
        key, scope, service, signed, signature = match.groups()
        token = self.headers.get("X-Amz-Security-Token")
        if key == ARGS.source_access_key and ARGS.source_access_key and token is None:
            secret = ARGS.source_secret_key
        elif key == ARGS.access_key and token in SESSION_TOKENS:
            secret = ARGS.secret_key
        else:
            self.sts_error(403, "InvalidClientTokenId", "The security token included in the request is invalid.")
            return None
        signed = signed.split(";")
        headers = {name.lower(): value for name, value in self.headers.items()}
        needed = {"host", "x-amz-date"} | ({"x-amz-security-token"} if token else set())
        raw_path, _, raw_query = self.path.partition("?")
        wanted = expected_signature(self.command, raw_path, raw_query, headers, signed,
                                    hashlib.sha256(raw_body).hexdigest(),
                                    headers.get("x-amz-date", ""), scope, secret)
        if service != "sts" or not needed <= set(signed) or not hmac.compare_digest(wanted, signature):
            self.sts_error(403, "SignatureDoesNotMatch", "The request signature we calculated does "
                           "not match the signature you provided.")
            return None
        return key

    def credentials_xml(self, action):
        token = issue("sts")
        self.answer(200, (
            "<%sResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><%sResult><Credentials>"
            "<AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
            "<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>"
            "</%sResult></%sResponse>")
            % (action, action, ARGS.access_key, ARGS.secret_key, token, expiration(), action,
               action), "text/xml")

    def assume_role(self, form, raw_body):
        if self.signer(raw_body) is None:
            return None
        if form.get("Version") != "2011-06-15":
            return self.sts_error(400, "ValidationError", "Version is not 2011-06-15")
        if form.get("RoleArn") not in ARGS.assume_role:
            return self.sts_error(403, "AccessDenied", "not authorized to perform: sts:AssumeRole on "
                                  "resource: %s" % form.get("RoleArn"))
        if ARGS.external_id and form.get("ExternalId") != ARGS.external_id:
            return self.sts_error(403, "AccessDenied", "not authorized to perform: sts:AssumeRole")
        if not re.fullmatch(r"[\w+=,.@-]{2,64}", form.get("RoleSessionName", "")):
            return self.sts_error(400, "ValidationError", "RoleSessionName is not valid")
        return self.credentials_xml("AssumeRole")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw_body = self.rfile.read(length)
        body = raw_body.decode()
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        self.record(form)
        if self.path != "/":
            return self.answer(404, "", "text/plain")
        if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return self.sts_error(400, "InvalidParameterValue", "not a form post")
        if form.get("Action") == "AssumeRole":
            return self.assume_role(form, raw_body)
        if "Authorization" in self.headers:
            return self.sts_error(400, "InvalidParameterValue", "AssumeRoleWithWebIdentity is unsigned")
        expected = {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                    "RoleArn": ARGS.role_arn}
        for name, value in expected.items():
            if form.get(name) != value:
                return self.sts_error(400, "ValidationError", "%s is not %s" % (name, value))
        if not re.fullmatch(r"[\w+=,.@-]{2,64}", form.get("RoleSessionName", "")):
            return self.sts_error(400, "ValidationError", "RoleSessionName is not valid")
        if ARGS.refuse or form.get("WebIdentityToken") != read(ARGS.web_identity_token_file):
            return self.sts_error(400, "InvalidIdentityToken", "Couldn't retrieve verification key "
                                  "from your identity provider")
        return self.credentials_xml("AssumeRoleWithWebIdentity")

    def credentials_json(self, kind, extra):
        document = {"AccessKeyId": ARGS.access_key, "SecretAccessKey": ARGS.secret_key,
                    "Token": issue(kind), "Expiration": expiration()}
        document.update(extra)
        self.answer(200, json.dumps(document), "application/json")

    def do_PUT(self):
        self.record({})
        if self.path != "/latest/api/token":
            return self.answer(404, "", "text/plain")
        if ARGS.imds_v1_only:
            return self.answer(405, "", "text/plain")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.answer(400, "", "text/plain")
        token = "imds-session-%d" % len(IMDS_TOKENS)
        IMDS_TOKENS.add(token)
        self.answer(200, token, "text/plain")

    def do_GET(self):
        self.record({})
        if self.path == "/v1/credentials":
            if ARGS.refuse or self.headers.get("Authorization") != read(ARGS.container_token_file):
                return self.answer(403, json.dumps({"Message": "invalid token"}), "application/json")
            return self.credentials_json("container", {"AccountId": "123456789012"})
        prefix = "/latest/meta-data/iam/security-credentials/"
        if self.path.startswith(prefix):
            if not ARGS.imds_v1_only and self.headers.get("X-aws-ec2-metadata-token") not in IMDS_TOKENS:
                return self.answer(401, "", "text/plain")
            role = self.path[len(prefix):]
            if not role:
                return self.answer(200, ARGS.imds_role, "text/plain")
            if role != ARGS.imds_role:
                return self.answer(404, "", "text/plain")
            return self.credentials_json("imds", {"Code": "Success", "Type": "AWS-HMAC",
                                                  "LastUpdated": expiration()})
        self.answer(404, "", "text/plain")


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--lifetime", type=int, default=3600)
    parser.add_argument("--role-arn", default="arn:aws:iam::123456789012:role/kserve-models")
    parser.add_argument("--web-identity-token-file", default="")
    parser.add_argument("--container-token-file", default="")
    parser.add_argument("--imds-role", default="kserve-node-role")
    parser.add_argument("--imds-v1-only", action="store_true",
                        help="an IMDSv1-only service: the token PUT answers 405")
    parser.add_argument("--refuse", action="store_true", help="refuse every STS/container call")
    parser.add_argument("--source-access-key", default="",
                        help="the long-term key pair AssumeRole accepts signatures from")
    parser.add_argument("--source-secret-key", default="")
    parser.add_argument("--assume-role", action="append", default=[],
                        help="a role AssumeRole grants (repeat for a chain)")
    parser.add_argument("--external-id", default="")
    parser.add_argument("--log")
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
