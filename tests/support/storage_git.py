#!/usr/bin/env python3
"""git fixtures for the storage tests.

  storage_git.py make ROOT
      Builds ROOT/work (a repository with an LFS-tracked weights file) and publishes it bare as
      ROOT/repos/model.git: tag v1 (config "v1"), branch dev (an extra file), main (config "v2").
      ROOT/lfs holds the LFS objects, as the LFS fake serves them. ROOT/repos/plain.git has no
      LFS file (git:// has no LFS endpoint): tag v1 (a.txt "1"), main (a.txt "2").
  storage_git.py lfs --port P --objects DIR [--log FILE]
      A fake of the Git LFS batch API (POST .../info/lfs/objects/batch, then GET of each object).
      Debian packages git-lfs as a client only, with no server, so the tests need this fake.
      It follows the documented API: https://github.com/git-lfs/git-lfs/blob/main/docs/api/batch.md
"""
import argparse
import http.server
import json
import os
import shutil
import subprocess
import sys


def git(*args, cwd=None):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    lfs = ["-c", "filter.lfs.process=git-lfs filter-process", "-c", "filter.lfs.required=true",
           "-c", "filter.lfs.clean=git-lfs clean -- %f", "-c", "filter.lfs.smudge=git-lfs smudge -- %f",
           "-c", "init.defaultBranch=main"]
    subprocess.run(["git", *lfs, *args], cwd=cwd, env=env, check=True, capture_output=True)


def make(root):
    work = os.path.join(root, "work")
    os.makedirs(os.path.join(work, "tok"))
    git("init", "-q", work)

    def write(name, data):
        with open(os.path.join(work, name), "wb") as f:
            f.write(data)

    write(".gitattributes", b"*.bin filter=lfs diff=lfs merge=lfs -text\n")
    write("config.json", b'{"version":"v1"}')
    write("tok/vocab.txt", b"a b c\n")
    write("weights.bin", bytes((i * 31 + 7) & 0xFF for i in range(300000)))
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "v1", cwd=work)
    git("tag", "v1", cwd=work)
    git("checkout", "-q", "-b", "dev", cwd=work)
    write("dev-only.txt", b"dev")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "dev", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    write("config.json", b'{"version":"v2"}')
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "v2", cwd=work)
    repos = os.path.join(root, "repos")
    os.makedirs(repos)
    git("clone", "-q", "--bare", work, os.path.join(repos, "model.git"))
    # The LFS objects stay with the fake, as on a forge: the bare repository holds pointers only.
    shutil.copytree(os.path.join(work, ".git", "lfs", "objects"), os.path.join(root, "lfs"))

    plain = os.path.join(root, "plain")
    git("init", "-q", plain)
    for version in ("1", "2"):
        with open(os.path.join(plain, "a.txt"), "w") as f:
            f.write(version)
        git("add", "-A", cwd=plain)
        git("commit", "-q", "-m", version, cwd=plain)
        if version == "1":
            git("tag", "v1", cwd=plain)
    git("clone", "-q", "--bare", plain, os.path.join(repos, "plain.git"))


def lfs(args):
    def object_path(oid):
        if len(oid) != 64 or any(c not in "0123456789abcdef" for c in oid):
            return None
        return os.path.join(args.objects, oid[0:2], oid[2:4], oid)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def record(self, what):
            if args.log:
                with open(args.log, "a") as f:
                    f.write(what + "\n")

        def do_POST(self):
            if not self.path.endswith("/info/lfs/objects/batch"):
                self.send_error(404)
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.record("batch " + body.get("operation", ""))
            objects = []
            for o in body.get("objects", []):
                path = object_path(o.get("oid", ""))
                if path is None or not os.path.exists(path):
                    objects.append({"oid": o.get("oid"), "size": o.get("size"),
                                    "error": {"code": 404, "message": "Object does not exist"}})
                    continue
                objects.append({"oid": o["oid"], "size": os.path.getsize(path), "authenticated": True,
                                # Objects come from another address than the repository, as
                                # on forges (a storage host), with a header the client must echo.
                                "actions": {"download": {"href": f"http://127.0.0.1:{args.port}/objects/{o['oid']}",
                                                         "header": {"X-Lfs-Ticket": "t-" + o["oid"][:8]}}}})
            out = json.dumps({"transfer": "basic", "objects": objects}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.git-lfs+json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_GET(self):
            oid = self.path.rsplit("/", 1)[-1]
            path = object_path(oid) if self.path.startswith("/objects/") else None
            if path is None or not os.path.exists(path) or \
                    self.headers.get("X-Lfs-Ticket") != "t-" + oid[:8]:
                self.send_error(404)
                return
            self.record("get " + oid)
            with open(path, "rb") as f:
                data = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("root")
    s = sub.add_parser("lfs")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--objects", required=True)
    s.add_argument("--log")
    args = parser.parse_args()
    if args.command == "make":
        make(args.root)
    else:
        lfs(args)


if __name__ == "__main__":
    sys.exit(main())
