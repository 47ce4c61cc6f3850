#!/usr/bin/env python3
"""A FAKE of the Azure Files REST API (the file service of a storage account), for tests.

It is a fake because azurite, the storage emulator, serves blobs, queues and tables but not
file shares. It serves the two requests a download makes, as the REST reference documents them:
  GET /<share>/<folder>?restype=directory&comp=list[&marker=]   List Directories and Files: an
        EnumerationResults XML of <File> (Name, Properties/Content-Length) and <Directory>
        (Name) entries, --page-size at a time with NextMarker; 404 ResourceNotFound for a
        folder that does not exist (a file's path included)
  GET /<share>/<path>   Get File, whole or the range x-ms-range asks (206 with Content-Range;
        416 InvalidRange for an empty file)
Shares are the folders --root/<share>/. Every request must carry x-ms-version and x-ms-date and
be signed: with --account-key, a Shared Key signature the fake computes itself from the
documented string-to-sign (403 AuthenticationFailed otherwise); with --sas, the query must hold
that SAS (sig and the rest, 403 otherwise). --log appends each request's method, path, query and
x-ms-range as a JSON line. Standard library only.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

ARGS = None
SIGNED_STANDARD = ("content-encoding", "content-language", "content-length", "content-md5",
                   "content-type", "date", "if-modified-since", "if-match", "if-none-match",
                   "if-unmodified-since", "range")


def shared_key(method, raw_path, query, headers):
    """The documented string-to-sign (2009-09-19 and later) and its HMAC-SHA256."""
    values = [method]
    for name in SIGNED_STANDARD:
        value = headers.get(name, "")
        values.append("" if name == "content-length" and value == "0" else value)
    canonical_headers = "".join("%s:%s\n" % (name, headers[name].strip())
                                for name in sorted(headers) if name.startswith("x-ms-"))
    resource = "/" + ARGS.account + raw_path
    params = {}
    for name, value in query:
        params.setdefault(name.lower(), []).append(value)
    for name in sorted(params):
        resource += "\n%s:%s" % (name, ",".join(sorted(params[name])))
    text = "\n".join(values) + "\n" + canonical_headers + resource
    key = base64.b64decode(ARGS.account_key)
    return base64.b64encode(hmac.new(key, text.encode(), hashlib.sha256).digest()).decode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if ARGS.verbose:
            sys.stderr.write("fake-azure-files: " + (fmt % args) + "\n")

    def error(self, status, code):
        body = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code>'
                '<Message>%s</Message></Error>' % (code, code)).encode()
        self.send_response(status)
        self.send_header("x-ms-error-code", code)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def authorized(self, raw_path, query):
        headers = {k.lower(): v for k, v in self.headers.items()}
        if "x-ms-version" not in headers or "x-ms-date" not in headers:
            return False
        if ARGS.sas:
            expected = urllib.parse.parse_qsl(ARGS.sas)
            return all(pair in query for pair in expected)
        if ARGS.account_key:
            signature = shared_key(self.command, raw_path, query, headers)
            return headers.get("authorization") == "SharedKey %s:%s" % (ARGS.account, signature)
        return True

    def do_GET(self):
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        if ARGS.log:
            with open(ARGS.log, "a", encoding="utf-8") as log:
                log.write(json.dumps({"method": self.command, "path": split.path,
                                      "query": dict(query),
                                      "range": self.headers.get("x-ms-range")}) + "\n")
        if not self.authorized(split.path, query):
            return self.error(403, "AuthenticationFailed")
        rel = urllib.parse.unquote(split.path).lstrip("/")
        if ".." in rel.split("/"):
            return self.error(400, "InvalidResourceName")
        path = os.path.join(ARGS.root, rel)
        params = dict(query)
        if params.get("restype") == "directory" and params.get("comp") == "list":
            return self.listing(path, params.get("marker", ""))
        if not os.path.isfile(path):
            return self.error(404, "ResourceNotFound")
        return self.file(path)

    def listing(self, path, marker):
        if not os.path.isdir(path):
            return self.error(404, "ResourceNotFound")
        entries = sorted(os.listdir(path))
        start = int(marker) if marker else 0
        page = entries[start:start + ARGS.page_size]
        items = []
        for name in page:
            full = os.path.join(path, name)
            if os.path.isdir(full):
                items.append("<Directory><Name>%s</Name></Directory>" % escape(name))
            else:
                items.append("<File><Name>%s</Name><Properties><Content-Length>%d"
                             "</Content-Length></Properties></File>"
                             % (escape(name), os.path.getsize(full)))
        following = start + ARGS.page_size
        next_marker = str(following) if following < len(entries) else ""
        body = ('<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Entries>%s'
                '</Entries><NextMarker>%s</NextMarker></EnumerationResults>'
                % ("".join(items), next_marker)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def file(self, path):
        size = os.path.getsize(path)
        first, last = 0, size - 1
        ranged = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("x-ms-range", ""))
        if ranged:
            first, last = int(ranged.group(1)), min(int(ranged.group(2)), size - 1)
            if first >= size:
                return self.error(416, "InvalidRange")
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (first, last, size))
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("ETag", '"0x%X"' % int(os.path.getmtime(path) * 1000))
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(first)
            left = last - first + 1
            while left > 0:
                chunk = f.read(min(left, 1 << 16))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--account", default="devstoreaccount1")
    parser.add_argument("--account-key", default="")
    parser.add_argument("--sas", default="")
    parser.add_argument("--page-size", type=int, default=5000)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--log")
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
