#!/usr/bin/env python3
"""A FAKE of Microsoft Entra ID's token endpoint and of Azure's managed identity endpoints, for
the storage tests.

It is a fake because none of these can run off Azure: Entra ID is a cloud service, IMDS exists
only on Azure hosts, and the App Service / Arc identity endpoint only there. It serves the
documented requests and checks each one exactly as azure-identity sends it:
  POST /<tenant>/oauth2/v2.0/token   client_credentials grant with client_id (--client-id) and
       scope https://storage.azure.com/.default, and either client_secret (--client-secret) or
       client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-bearer with
       client_assertion equal to the content of --assertion-file at that moment (the tests
       rotate it), or, with --certificate CERT.pem, a certificate credential's assertion: an
       RS256 JWT whose x5t is CERT's SHA-1 thumbprint, whose signature CERT's key verifies
       (openssl dgst), with aud the token URL, iss and sub the client id, a jti, and nbf/exp
       around now; with --require-x5c the header must also carry CERT as the first x5c entry.
       Unknown tenant (--tenant) or a wrong secret/assertion answers 400/401 with an AADSTS
       error_description, as Entra does.
  GET  /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...&client_id=...
       IMDS: needs "Metadata: true" (400 without, as IMDS); --imds-fail N answers the first N
       with 410 (IMDS while the VM boots).
  GET  /msi/token?api-version=2019-08-01&resource=...&client_id=...   the IDENTITY_ENDPOINT
       form: needs X-IDENTITY-HEADER equal to --identity-header.
The access tokens are JWTs with the claims azurite's OAuth check reads (iss
https://sts.windows.net/<tenant>/, aud https://storage.azure.com, nbf, exp = now + --lifetime);
the signature is not checked by azurite and is a placeholder. Every token issued is appended to
--issued, every request to --log as a JSON line. Standard library only.
"""
import argparse
import base64
import hashlib
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
COUNTER = {"n": 0, "imds": 0}

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def certificate_der():
    with open(ARGS.certificate) as f:
        pem = f.read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return base64.b64decode("".join(body.split()))


def check_certificate_assertion(assertion, token_url):
    """Why a certificate credential's assertion is refused, or None."""
    try:
        header_b64, claims_b64, signature_b64 = assertion.split(".")
        header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(claims_b64))
        signature = b64url_decode(signature_b64)
    except (ValueError, json.JSONDecodeError):
        return "AADSTS50027: JWT token is invalid or malformed."
    der = certificate_der()
    if header.get("alg") != "RS256" or \
            header.get("x5t") != b64url(hashlib.sha1(der).digest()):
        return "AADSTS700027: Client assertion contains an invalid signature (x5t)."
    if ARGS.require_x5c and (header.get("x5c") or [None])[0] != base64.b64encode(der).decode():
        return "AADSTS700027: the certificate chain (x5c) is missing."
    now = time.time()
    if claims.get("aud") != token_url or claims.get("iss") != ARGS.client_id or \
            claims.get("sub") != ARGS.client_id or not claims.get("jti") or \
            not claims.get("nbf", now + 1000) <= now + 60 or not claims.get("exp", 0) > now:
        return "AADSTS700024: Client assertion claims are wrong or out of their time range."
    with tempfile.TemporaryDirectory() as work:
        public = os.path.join(work, "public.pem")
        subprocess.run(["openssl", "x509", "-in", ARGS.certificate, "-pubkey", "-noout",
                        "-out", public], check=True)
        with open(os.path.join(work, "signature"), "wb") as f:
            f.write(signature)
        with open(os.path.join(work, "input"), "w") as f:
            f.write(header_b64 + "." + claims_b64)
        verified = subprocess.run(["openssl", "dgst", "-sha256", "-verify", public, "-signature",
                                   os.path.join(work, "signature"), os.path.join(work, "input")],
                                  capture_output=True)
    if verified.returncode != 0:
        return "AADSTS700027: Client assertion contains an invalid signature."
    return None


def mint(kind):
    with LOCK:
        COUNTER["n"] += 1
        n = COUNTER["n"]
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/%s/" %
              ARGS.tenant, "iat": now, "nbf": now - 5, "exp": now + ARGS.lifetime,
              "oid": "00000000-0000-0000-0000-00000000000%d" % (n % 10), "tid": ARGS.tenant,
              "appid": ARGS.client_id, "jti": "%s-%d" % (kind, n)}
    token = ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()),
                      b64url(b"unsigned")])
    if ARGS.issued:
        with LOCK, open(ARGS.issued, "a") as f:
            f.write(token + "\n")
    return token


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, form):
        url = urllib.parse.urlsplit(self.path)
        entry = {"method": self.command, "path": url.path,
                 "query": {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()},
                 "form": form,
                 "headers": {k: self.headers.get(k) for k in (
                     "Metadata", "X-IDENTITY-HEADER", "Content-Type") if self.headers.get(k)}}
        if ARGS.log:
            with LOCK, open(ARGS.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()}
        self.record(form)
        parts = urllib.parse.urlsplit(self.path).path.split("/")
        if len(parts) != 5 or parts[2:] != ["oauth2", "v2.0", "token"]:
            return self.reply(404, {"error": "not_found"})
        if parts[1] != ARGS.tenant:
            return self.reply(400, {"error": "invalid_request", "error_description":
                                    "AADSTS90002: Tenant '%s' not found." % parts[1]})
        if (form.get("grant_type") != "client_credentials"
                or form.get("scope") != "https://storage.azure.com/.default"):
            return self.reply(400, {"error": "invalid_request",
                                    "error_description": "AADSTS900144: grant_type or scope"})
        if form.get("client_id") != ARGS.client_id:
            return self.reply(400, {"error": "unauthorized_client", "error_description":
                                    "AADSTS700016: Application not found in the directory."})
        if "client_assertion" in form and ARGS.certificate:
            token_url = "http://%s%s" % (self.headers.get("Host"), self.path)
            refused = form.get("client_assertion_type") != ASSERTION_TYPE and \
                "AADSTS900144: client_assertion_type" or \
                check_certificate_assertion(form["client_assertion"], token_url)
            if refused:
                return self.reply(401, {"error": "invalid_client", "error_description": refused})
        elif "client_assertion" in form:
            with open(ARGS.assertion_file) as f:
                expected = f.read().strip()
            if form.get("client_assertion_type") != ASSERTION_TYPE or \
                    form["client_assertion"] != expected:
                return self.reply(401, {"error": "invalid_client", "error_description":
                                        "AADSTS700024: Client assertion is not within its valid "
                                        "time range."})
        elif form.get("client_secret") != ARGS.client_secret or not ARGS.client_secret:
            return self.reply(401, {"error": "invalid_client", "error_description":
                                    "AADSTS7000215: Invalid client secret provided."})
        return self.reply(200, {"token_type": "Bearer", "expires_in": ARGS.lifetime,
                                "ext_expires_in": ARGS.lifetime,
                                "access_token": mint("entra")})

    def do_GET(self):
        self.record(None)
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        if url.path == "/metadata/identity/oauth2/token":
            if self.headers.get("Metadata") != "true":
                return self.reply(400, {"error": "invalid_request",
                                        "error_description": "Required metadata header not "
                                                             "specified"})
            with LOCK:
                COUNTER["imds"] += 1
                failing = COUNTER["imds"] <= ARGS.imds_fail
            if failing:
                return self.reply(410, {"error": "unavailable"})
            version = "2018-02-01"
        elif url.path == "/msi/token":
            if self.headers.get("X-IDENTITY-HEADER") != ARGS.identity_header:
                return self.reply(401, {"error": "unauthorized"})
            version = "2019-08-01"
        else:
            return self.reply(404, {"error": "not_found"})
        if query.get("api-version") != version or \
                query.get("resource") != "https://storage.azure.com/":
            return self.reply(400, {"error": "invalid_request",
                                    "error_description": "api-version or resource"})
        if query.get("client_id") != ARGS.client_id:
            return self.reply(400, {"error": "invalid_request", "error_description":
                                    "Identity not found"})
        now = int(time.time())
        body = {"access_token": mint("managed"), "expires_on": str(now + ARGS.lifetime),
                "resource": "https://storage.azure.com/", "token_type": "Bearer"}
        if version == "2018-02-01":
            body["expires_in"] = str(ARGS.lifetime)
        return self.reply(200, body)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tenant", default="tenant-1")
    parser.add_argument("--client-id", default="client-1")
    parser.add_argument("--client-secret", default="")
    parser.add_argument("--assertion-file", default="/dev/null")
    parser.add_argument("--identity-header", default="")
    parser.add_argument("--certificate")
    parser.add_argument("--require-x5c", action="store_true")
    parser.add_argument("--lifetime", type=int, default=3600)
    parser.add_argument("--imds-fail", type=int, default=0)
    parser.add_argument("--issued")
    parser.add_argument("--log")
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
