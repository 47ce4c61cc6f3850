#!/usr/bin/python3
"""Peers of the confidential-serving tests (puller/storage/confidential.h).

  encrypt --key-file K --alg A --enc E [--json] [--zip] IN OUT
      Encrypts IN into OUT as a JWE with jwcrypto (Debian python3-jwcrypto, the library KServe's
      own decryptor uses), so the files under test come from a real implementation: compact
      serialization, or the general JSON one with --json; --zip adds "zip": "DEF".
  matrix --out DIR --plain FILE
      For every alg (dir, A128KW, A192KW, A256KW) and enc (A128GCM, A192GCM, A256GCM,
      A128CBC-HS256, A192CBC-HS384, A256CBC-HS512): DIR/<alg>_<enc>.key (random, of the size the
      pair needs), DIR/<alg>_<enc>.compact and DIR/<alg>_<enc>.json, both of FILE.
  cdh --port P --resource REPO/TYPE/TAG --key-file K --log L
      A FAKE of the Confidential Data Hub's resource API (CDH runs only inside a confidential
      guest, attested by a Key Broker Service; nothing of it can run here):
      GET /cdh/resource/REPO/TYPE/TAG answers the key's bytes, anything else 404. Each request
      path is appended to L.
"""
import argparse
import http.server
import json
import os
import sys

from jwcrypto import jwe, jwk

KEY_BYTES = {"A128KW": 16, "A192KW": 24, "A256KW": 32}
ENC_BYTES = {"A128GCM": 16, "A192GCM": 24, "A256GCM": 32, "A128CBC-HS256": 32,
             "A192CBC-HS384": 48, "A256CBC-HS512": 64}


def encrypt(plain, key, alg, enc, as_json=False, zip_=False):
    header = {"alg": alg, "enc": enc}
    if zip_:
        header["zip"] = "DEF"
    token = jwe.JWE(plain, json.dumps(header))
    token.add_recipient(jwk.JWK(kty="oct", k=jwk.base64url_encode(key)))
    return token.serialize(compact=not as_json)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("encrypt")
    p.add_argument("--key-file", required=True)
    p.add_argument("--alg", required=True)
    p.add_argument("--enc", required=True)
    p.add_argument("--json", action="store_true")
    p.add_argument("--zip", action="store_true")
    p.add_argument("input")
    p.add_argument("output")
    p = sub.add_parser("matrix")
    p.add_argument("--out", required=True)
    p.add_argument("--plain", required=True)
    p = sub.add_parser("cdh")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--resource", required=True)
    p.add_argument("--key-file", required=True)
    p.add_argument("--log", required=True)
    args = parser.parse_args()

    if args.command == "encrypt":
        with open(args.key_file, "rb") as f:
            key = f.read()
        with open(args.input, "rb") as f:
            plain = f.read()
        with open(args.output, "w") as f:
            f.write(encrypt(plain, key, args.alg, args.enc, args.json, args.zip))
    elif args.command == "matrix":
        with open(args.plain, "rb") as f:
            plain = f.read()
        for alg in ["dir"] + list(KEY_BYTES):
            for enc, size in ENC_BYTES.items():
                key = os.urandom(size if alg == "dir" else KEY_BYTES[alg])
                stem = os.path.join(args.out, "%s_%s" % (alg, enc))
                with open(stem + ".key", "wb") as f:
                    f.write(key)
                with open(stem + ".compact", "w") as f:
                    f.write(encrypt(plain, key, alg, enc))
                with open(stem + ".json", "w") as f:
                    f.write(encrypt(plain, key, alg, enc, as_json=True))
    else:
        wanted = "/cdh/resource/" + args.resource
        log = open(args.log, "a", buffering=1)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def do_GET(self):
                log.write(self.path + "\n")
                with open(args.key_file, "rb") as f:
                    key = f.read()
                status, body = (200, key) if self.path == wanted else (404, b"no such resource")
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
