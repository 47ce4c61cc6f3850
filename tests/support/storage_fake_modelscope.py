#!/usr/bin/env python3
"""A FAKE of the ModelScope Hub's REST API, for tests.

It is a fake because ModelScope has no server package to run on loopback. It serves the paths
the modelscope SDK (hub/api.py) reads a repository with:
  GET /api/v1/models/<owner>/<model>/repo/files?Revision=<rev>&Recursive=true[&PageNumber=&PageSize=]
        {"Code": 200, "Success": true, "Data": {"Files": [{"Path", "Name", "Type": "blob"|"tree",
        "Size", "Sha256"}]}}, a page at a time (--page-size caps what a page holds, whatever
        PageSize asks, so paging is exercised)
  GET /api/v1/models/<owner>/<model>/repo?Revision=<rev>&FilePath=<path>
        302 to /oss/<owner>/<model>/<path>, as the site redirects downloads to object storage,
        which takes Range (206)
Repositories are the folders --root/<owner>/<model>/; only revision "master" and "v1.0" exist.
With --token every API request must carry the cookie "m_session_id=<token>" (401 otherwise);
--wrong-sha lists a wrong Sha256 for the named file; --log appends each object storage request's
path and Range header as a JSON line. Standard library only.
"""
import argparse
import hashlib
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from storage_ranges import send_file

ARGS = None
REVISIONS = ("master", "v1.0")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if ARGS.verbose:
            sys.stderr.write("fake-modelscope: " + (fmt % args) + "\n")

    def reply(self, status, body, extra=()):
        body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(split.query).items()}
        if path.startswith("/oss/"):
            if ARGS.log:
                with open(ARGS.log, "a", encoding="utf-8") as log:
                    log.write(json.dumps({"path": path, "range": self.headers.get("Range"),
                                          "cookie": self.headers.get("Cookie")}) + "\n")
            return self.object(path[len("/oss/"):])
        if ARGS.token and self.headers.get("Cookie") != "m_session_id=" + ARGS.token:
            return self.reply(401, {"Code": 10010101, "Message": "Unauthorized", "Success": False})
        parts = path.strip("/").split("/")
        rest = "/".join(parts[5:])
        if len(parts) < 6 or parts[0:3] != ["api", "v1", "models"] or \
                rest not in ("repo", "repo/files"):
            return self.reply(404, {"Code": 404, "Message": "Not Found", "Success": False})
        repo = parts[3] + "/" + parts[4]
        folder = os.path.join(ARGS.root, repo)
        if not os.path.isdir(folder) or query.get("Revision", "master") not in REVISIONS:
            return self.reply(404, {"Code": 10010205, "Message": "model or revision not found",
                                    "Success": False})
        if rest == "repo/files":
            return self.files(folder, query)
        file = query.get("FilePath", "")
        if not os.path.isfile(os.path.join(folder, file)):
            return self.reply(404, {"Code": 404, "Message": "file not found", "Success": False})
        target = "/oss/" + urllib.parse.quote(repo + "/" + file)
        return self.reply(302, {}, [("Location", target)])

    def files(self, folder, query):
        entries = []
        for dirpath, dirs, files in os.walk(folder):
            for name in dirs:
                rel = os.path.relpath(os.path.join(dirpath, name), folder).replace(os.sep, "/")
                entries.append({"Path": rel, "Name": name, "Type": "tree", "Size": 0})
            for name in files:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, folder).replace(os.sep, "/")
                sha = sha256_of(full) if rel != ARGS.wrong_sha else "0" * 64
                entries.append({"Path": rel, "Name": name, "Type": "blob",
                                "Size": os.path.getsize(full), "Sha256": sha})
        entries.sort(key=lambda e: e["Path"])
        size = min(int(query.get("PageSize", "100")), ARGS.page_size)
        page = int(query.get("PageNumber", "1"))
        chosen = entries[(page - 1) * size:page * size]
        return self.reply(200, {"Code": 200, "Success": True, "Message": "success",
                                "Data": {"Files": chosen}})

    def object(self, rel):
        path = os.path.join(ARGS.root, rel)
        if not os.path.isfile(path):
            return self.reply(404, {"Code": 404, "Message": "NoSuchKey"})
        send_file(self, path)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--token")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--wrong-sha", default="")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--log")
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
