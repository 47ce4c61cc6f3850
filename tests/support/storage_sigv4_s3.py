#!/usr/bin/env python3
"""A FAKE S3 that checks AWS Signature Version 4 on every request, for the upload tests.

It exists because s3rver (the real S3 server the other tests use) checks only that a SigV4
access key id is known, not the signature. This one recomputes each signature from the request
as received, with its own code (hashlib and hmac from Python's standard library), following
AWS's documented algorithm, and checks that x-amz-content-sha256 is the SHA-256 of the body.
A request that fails either check gets 403 SignatureDoesNotMatch / XAmzContentSHA256Mismatch.
It keeps objects in memory, path style, for these operations:
  PUT  /<bucket>/<key>                              PutObject
  POST /<bucket>/<key>?uploads                      CreateMultipartUpload
  PUT  /<bucket>/<key>?partNumber=N&uploadId=U      UploadPart (answers an ETag)
  POST /<bucket>/<key>?uploadId=U                   CompleteMultipartUpload
  DELETE /<bucket>/<key>?uploadId=U                 AbortMultipartUpload
  GET  /<bucket>/<key>                              GetObject
Usage: storage_sigv4_s3.py --port P --access-key K --secret-key S [--region R]
"""
import argparse
import hashlib
import hmac
import re
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
OBJECTS = {}
UPLOADS = {}


def sign(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def rfc3986(text):
    return urllib.parse.quote(text, safe="-_.~")


def expected_signature(method, raw_path, raw_query, headers, signed, payload_hash, date, scope,
                       secret):
    pairs = []
    if raw_query:
        for item in raw_query.split("&"):
            name, _, value = item.partition("=")
            pairs.append((rfc3986(urllib.parse.unquote(name)), rfc3986(urllib.parse.unquote(value))))
    query = "&".join("%s=%s" % pair for pair in sorted(pairs))
    canonical_headers = "".join(
        "%s:%s\n" % (name, " ".join(headers.get(name, "").split())) for name in signed)
    canonical = "\n".join([method, raw_path, query, canonical_headers, ";".join(signed),
                           payload_hash])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    day, region, service, _ = scope.split("/")
    key = sign(sign(sign(sign(("AWS4" + secret).encode(), day), region), service),
               "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, code):
        self.reply(status, ("<Error><Code>%s</Code><Message>%s</Message></Error>" % (code, code))
                   .encode(), {"Content-Type": "application/xml"})

    def verified(self, body):
        auth = self.headers.get("Authorization", "")
        match = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/([^,]+), "
                             r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})", auth)
        if not match or match.group(1) != ARGS.access_key:
            self.error(403, "InvalidAccessKeyId")
            return False
        payload_hash = self.headers.get("x-amz-content-sha256", "")
        if payload_hash != hashlib.sha256(body).hexdigest():
            self.error(400, "XAmzContentSHA256Mismatch")
            return False
        headers = {name.lower(): value for name, value in self.headers.items()}
        signed = match.group(3).split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            self.error(403, "SignatureDoesNotMatch")
            return False
        raw_path, _, raw_query = self.path.partition("?")
        wanted = expected_signature(self.command, raw_path, raw_query, headers, signed,
                                    payload_hash, headers.get("x-amz-date", ""), match.group(2),
                                    ARGS.secret_key)
        if not hmac.compare_digest(wanted, match.group(4)):
            self.error(403, "SignatureDoesNotMatch")
            return False
        return True

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.verified(body):
            return
        raw_path, _, raw_query = self.path.partition("?")
        key = urllib.parse.unquote(raw_path)
        query = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        if self.command == "PUT" and "uploadId" in query:
            parts = UPLOADS.get(query["uploadId"][0])
            if parts is None:
                return self.error(404, "NoSuchUpload")
            etag = '"%s"' % hashlib.md5(body).hexdigest()
            parts[int(query["partNumber"][0])] = (etag, body)
            return self.reply(200, b"", {"ETag": etag})
        if self.command == "PUT":
            OBJECTS[key] = body
            return self.reply(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
        if self.command == "POST" and "uploads" in query:
            upload_id = "u%d" % (len(UPLOADS) + 1)
            UPLOADS[upload_id] = {}
            return self.reply(200, ("<InitiateMultipartUploadResult><UploadId>%s</UploadId>"
                                    "</InitiateMultipartUploadResult>" % upload_id).encode())
        if self.command == "POST" and "uploadId" in query:
            parts = UPLOADS.pop(query["uploadId"][0], None)
            if parts is None:
                return self.error(404, "NoSuchUpload")
            listed = re.findall(r"<PartNumber>(\d+)</PartNumber><ETag>([^<]+)</ETag>",
                                body.decode())
            if [int(n) for n, _ in listed] != sorted(parts) or any(
                    parts[int(n)][0] != etag for n, etag in listed):
                return self.error(400, "InvalidPart")
            OBJECTS[key] = b"".join(parts[n][1] for n in sorted(parts))
            return self.reply(200, b"<CompleteMultipartUploadResult/>")
        if self.command == "DELETE" and "uploadId" in query:
            UPLOADS.pop(query["uploadId"][0], None)
            return self.reply(204)
        if self.command == "GET" and key in OBJECTS:
            return self.reply(200, OBJECTS[key], {"Content-Type": "application/octet-stream"})
        return self.error(404, "NoSuchKey")

    do_GET = do_PUT = do_POST = do_DELETE = handle_any


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key", required=True)
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
