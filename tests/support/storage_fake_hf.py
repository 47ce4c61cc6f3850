#!/usr/bin/env python3
"""A FAKE of the Hugging Face Hub HTTP API, for tests.

It is a fake because the Hub has no server package to run on loopback. It follows the
documented API paths that huggingface_hub uses:
  GET /api/models/<owner>/<model>/revision/<revision>   {"id", "sha", "siblings": [{"rfilename"}]}
        (?blobs=true adds each sibling's "size" and "blobId", unless --no-blob-sizes)
  GET /<owner>/<model>/resolve/<revision>/<file>        302 to /cdn/..., as the Hub redirects
                                                        file downloads to its CDN, which takes
                                                        Range (206)
Repositories are the folders --root/<owner>/<model>/; only revision "main" and the fake sha
exist. With --token every request must carry "Authorization: Bearer <token>". --log appends each CDN
request's path and Range header as a JSON line.
Standard library only.
"""
import argparse
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from storage_ranges import send_file

ARGS = None
SHA = "0123456789abcdef0123456789abcdef01234567"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if ARGS.verbose:
            sys.stderr.write("fake-hf: " + (fmt % args) + "\n")

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
        if path.startswith("/cdn/"):
            if ARGS.log:
                with open(ARGS.log, "a", encoding="utf-8") as log:
                    log.write(json.dumps({"path": path, "range": self.headers.get("Range")}) + "\n")
            return self.cdn_file(path[len("/cdn/"):])
        if ARGS.token and self.headers.get("Authorization") != "Bearer " + ARGS.token:
            return self.reply(401, {"error": "Invalid credentials"})
        parts = path.strip("/").split("/")
        if len(parts) == 6 and parts[0:2] == ["api", "models"] and parts[4] == "revision":
            blobs = urllib.parse.parse_qs(split.query).get("blobs") == ["true"]
            return self.revision(parts[2] + "/" + parts[3], parts[5], blobs)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, revision, file = parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:])
            if revision not in ("main", SHA):
                return self.reply(404, {"error": "Revision Not Found"})
            target = "/cdn/" + urllib.parse.quote(repo + "/" + file)
            return self.reply(302, {}, [("Location", target)])
        return self.reply(404, {"error": "Not Found"})

    def revision(self, repo, revision, blobs):
        folder = os.path.join(ARGS.root, repo)
        if not os.path.isdir(folder):
            return self.reply(404, {"error": "Repository Not Found"})
        if revision not in ("main", SHA):
            return self.reply(404, {"error": "Revision Not Found"})
        siblings = []
        for dirpath, _, files in os.walk(folder):
            for file in files:
                full = os.path.join(dirpath, file)
                rel = os.path.relpath(full, folder).replace(os.sep, "/")
                sibling = {"rfilename": rel}
                if blobs and not ARGS.no_blob_sizes:
                    stat = os.stat(full)
                    sibling["size"] = stat.st_size
                    # Changes when the file is replaced, as a blob id does with the content.
                    sibling["blobId"] = "%x%x" % (stat.st_mtime_ns, stat.st_ino)
                siblings.append(sibling)
        siblings.sort(key=lambda s: s["rfilename"])
        return self.reply(200, {"id": repo, "sha": SHA, "siblings": siblings})

    def cdn_file(self, rel):
        path = os.path.join(ARGS.root, rel)
        if not os.path.isfile(path):
            return self.reply(404, {"error": "Entry Not Found"})
        send_file(self, path)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--token")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--log")
    parser.add_argument("--no-blob-sizes", action="store_true",
                        help="answer blobs=true without sizes, as a mirror that ignores it")
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
