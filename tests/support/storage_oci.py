#!/usr/bin/env python3
"""OCI fixtures for the storage tests.

make ROOT --arch GOARCH
    Writes OCI image layouts (the format skopeo copies from) under ROOT/layouts:
      model     a modelcar image for linux/GOARCH: a base layer with files outside models/, a
                gzip layer with models/ (config.json, weights/w.bin, a symbolic link, a whiteout)
                and a zstd layer adding models/extra.txt;
      multi     an index of two images, linux/arm64 and linux/amd64, whose models/arch.txt says
                which one it is;
      nomodels  an image with the base layer only;
      escape    an image whose layer has models/../../evil.txt;
      large     an image whose one layer holds models/big.bin, 40 MiB of random bytes (far more
                than the socket and pipe buffers between the download and the unpacking).
    Every layout has the tag "v1". ROOT/digests.json maps each layout to the digest of what its
    tag names (the manifest, or the index), and large_file_sha256 to big.bin's SHA-256.

token --port PORT --key KEY --cert CERT --user USER --password PASSWORD --log LOG
    A token service for a registry in `auth: token` mode (Debian's docker-registry checks the
    tokens: RS256, signed by KEY, whose certificate CERT is its root bundle). GET /token with
    Basic USER:PASSWORD answers a token granting pull and push on the scope asked, and so does
    POST /token with the OAuth2 form grant_type=refresh_token, a client_id and the refresh token
    --refresh-token (a docker config's identitytoken); anything else is a 401. Each request is
    logged as one JSON line (path, query or form fields, whether it carried credentials and
    whether they matched; never the credentials).
"""
import argparse
import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import time
import urllib.parse

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
LARGE_BYTES = 40 << 20


def weights():
    """64 KiB that differ at every offset (a misplaced block shows)."""
    return b"".join(i.to_bytes(4, "little") for i in range(16384))


def tar_bytes(entries):
    """entries: (name, kind, data) with kind "file", "dir" or "link" (data = target)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif kind == "link":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Layout:
    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def blob(self, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.path, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

    def layer(self, entries, compression="gzip", level=9):
        raw = tar_bytes(entries)
        if compression == "gzip":
            return self.blob(gzip.compress(raw, compresslevel=level, mtime=0), LAYER_GZIP), raw
        packed = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True)
        return self.blob(packed.stdout, LAYER_ZSTD), raw

    def image(self, layers, arch):
        config = {"architecture": arch, "os": "linux",
                  "rootfs": {"type": "layers",
                             "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()
                                          for _, raw in layers]},
                  "config": {}}
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": self.blob(json.dumps(config).encode(), OCI_CONFIG),
                    "layers": [descriptor for descriptor, _ in layers]}
        return self.blob(json.dumps(manifest).encode(), OCI_MANIFEST)

    def tag(self, descriptor):
        named = dict(descriptor, annotations={"org.opencontainers.image.ref.name": "v1"})
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [named]}, f)
        return descriptor["digest"]


def base_layer(layout):
    return layout.layer([("etc", "dir", None), ("etc/os-release", "file", b"ID=test\n"),
                         ("usr/bin/tool", "file", b"#!/bin/sh\n")])


def make(root, arch):
    digests = {}
    layouts = os.path.join(root, "layouts")

    model = Layout(os.path.join(layouts, "model"))
    models = model.layer([("models", "dir", None),
                          ("models/config.json", "file", b'{"name":"m"}'),
                          ("models/weights", "dir", None),
                          ("models/weights/w.bin", "file", weights()),
                          ("models/latest", "link", "config.json"),
                          ("models/.wh.stale.bin", "file", b"")])
    extra = model.layer([("models/extra.txt", "file", b"extra")], compression="zstd")
    digests["model"] = model.tag(model.image([base_layer(model), models, extra], arch))

    multi = Layout(os.path.join(layouts, "multi"))
    entries = []
    for platform in ("arm64", "amd64"):
        layer = multi.layer([("models/arch.txt", "file", platform.encode())])
        descriptor = multi.image([layer], platform)
        entries.append(dict(descriptor, platform={"os": "linux", "architecture": platform}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    digests["multi"] = multi.tag(multi.blob(json.dumps(index).encode(), OCI_INDEX))

    nomodels = Layout(os.path.join(layouts, "nomodels"))
    digests["nomodels"] = nomodels.tag(nomodels.image([base_layer(nomodels)], arch))

    escape = Layout(os.path.join(layouts, "escape"))
    bad = escape.layer([("models/ok.txt", "file", b"ok"),
                        ("models/../../evil.txt", "file", b"evil")])
    digests["escape"] = escape.tag(escape.image([bad], arch))

    large = Layout(os.path.join(layouts, "large"))
    big = random.Random(7).randbytes(LARGE_BYTES)
    layer = large.layer([("models/big.bin", "file", big)], level=1)
    digests["large"] = large.tag(large.image([layer], arch))
    digests["large_file_sha256"] = hashlib.sha256(big).hexdigest()

    with open(os.path.join(root, "digests.json"), "w") as f:
        json.dump(digests, f)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_service(args):
    with open(args.cert) as f:
        pem = f.read()
    der = base64.b64decode("".join(line for line in pem.splitlines() if "-----" not in line))
    expected = "Basic " + base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
    log = open(args.log, "a", buffering=1)

    def sign(claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        signing_input = b64url(json.dumps(header).encode()) + "." + \
            b64url(json.dumps(claims).encode())
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", args.key],
                                   input=signing_input.encode(), capture_output=True,
                                   check=True).stdout
        return signing_input + "." + b64url(signature)

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def refuse(self):
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            # The OAuth2 form of the token API: a refresh token (a docker config's identitytoken)
            # traded for an access token.
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            log.write(json.dumps({"path": url.path, "method": "POST",
                                  "content_type": self.headers.get("Content-Type", ""),
                                  "grant_type": form.get("grant_type", [""])[0],
                                  "client_id": form.get("client_id", [""])[0],
                                  "query": {k: v for k, v in form.items() if k in ("service", "scope")},
                                  "authorization": "Authorization" in self.headers,
                                  "credentials_match": bool(args.refresh_token) and
                                  form.get("refresh_token") == [args.refresh_token]}) + "\n")
            if (url.path != "/token" or form.get("grant_type") != ["refresh_token"]
                    or not form.get("client_id") or not args.refresh_token
                    or form.get("refresh_token") != [args.refresh_token]):
                return self.refuse()
            self.issue(form)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            authorization = self.headers.get("Authorization", "")
            log.write(json.dumps({"path": url.path, "query": query,
                                  "basic": authorization.startswith("Basic "),
                                  "credentials_match": authorization == expected}) + "\n")
            if url.path != "/token" or authorization != expected:
                return self.refuse()
            self.issue(query)

        def issue(self, query):
            access = []
            for scope in query.get("scope", []):
                parts = scope.split(":")
                if len(parts) == 3 and parts[0] == "repository":
                    access.append({"type": "repository", "name": parts[1],
                                   "actions": ["pull", "push"]})
            now = int(time.time())
            token = sign({"iss": "test-issuer", "sub": args.user,
                          "aud": query.get("service", [""])[0], "exp": now + 300,
                          "nbf": now - 10, "iat": now, "jti": str(now) + str(id(self)),
                          "access": access})
            body = json.dumps({"token": token, "access_token": token}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make")
    p.add_argument("root")
    p.add_argument("--arch", required=True)
    p = sub.add_parser("token")
    for name in ("--key", "--cert", "--user", "--password", "--log"):
        p.add_argument(name, required=True)
    p.add_argument("--refresh-token", default="",
                   help="the identity token POST /token accepts (grant_type=refresh_token)")
    p.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.command == "make":
        make(args.root, args.arch)
    else:
        token_service(args)


if __name__ == "__main__":
    sys.exit(main())
