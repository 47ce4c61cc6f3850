#!/usr/bin/env python3
"""Checks the shape of the tree and of the built binaries (issue 26's invariants).

- core/ includes nothing outside itself; the modules (batcher, logger, puller) include nothing
  from the binaries' folders (agent/, router/): arrows point core <- modules <- binaries.
- The plugins (the agent's modules library, the router's https library) hold no definition of
  the core (its objects come from the executable, one copy per process) and export none of it.
- storage-initializer maps no event loop (libuv, liburing, prometheus); the plain proxy maps no
  libcurl, libarchive or OpenSSL (those come with the modules library, loaded when needed), and
  kserve-router no libcurl or OpenSSL (its https plugin brings them when a step is https).
Prints one line per violation and exits 1 when there is any.
"""
import argparse
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def includes(root, folder):
    for base, _, files in os.walk(os.path.join(root, folder)):
        for name in files:
            if not name.endswith((".h", ".cc")):
                continue
            path = os.path.join(base, name)
            with open(path, encoding="utf-8") as f:
                for target in INCLUDE.findall(f.read()):
                    yield os.path.relpath(path, root), target


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--agent", required=True)
    parser.add_argument("--modules", required=True)
    parser.add_argument("--storage-initializer", required=True)
    parser.add_argument("--router", required=True)
    parser.add_argument("--router-https", required=True)
    args = parser.parse_args()
    problems = []

    allowed = {
        "core": ("core/",),
        "core_curl": ("core/", "core_curl/"),
        "batcher": ("core/", "batcher/"),
        "logger": ("core/", "core_curl/", "logger/"),
        "puller": ("core/", "puller/"),
    }
    for folder, prefixes in allowed.items():
        for source, target in includes(args.root, folder):
            if "/" in target and not target.startswith(prefixes):
                problems.append(f"{source} includes {target}: {folder}/ may include only "
                                f"{', '.join(prefixes)}")

    for plugin in (args.modules, args.router_https):
        symbols = subprocess.run(["nm", "-C", "--defined-only", plugin], check=True,
                                 capture_output=True, text=True).stdout
        for line in symbols.splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[1] in "TDBR" and parts[2].startswith("core::"):
                problems.append(f"{os.path.basename(plugin)} defines {parts[2]}")
        exported = subprocess.run(["nm", "-C", "-D", "--defined-only", plugin], check=True,
                                  capture_output=True, text=True).stdout
        for line in exported.splitlines():
            if "core::" in line:
                problems.append(f"{os.path.basename(plugin)} exports {line.split(' ', 2)[2]}")

    def mapped(binary):
        out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    for library in mapped(args.storage_initializer):
        if re.match(r"lib(uv|uring|prometheus|llhttp)", library):
            problems.append(f"storage-initializer maps {library}, an event-loop library")
    for library in mapped(args.agent):
        if re.match(r"lib(curl|archive|ssl|crypto)\.", library):
            problems.append(f"kserve-agent maps {library}; only the modules library should")
    for library in mapped(args.router):
        if re.match(r"lib(curl|ssl|crypto)\.", library):
            problems.append(f"kserve-router maps {library}; only its https plugin should")

    for problem in problems:
        print(problem)
    if problems:
        sys.exit(1)
    print("layers: core/ stands alone, modules use only core/, one copy of the core per process")


if __name__ == "__main__":
    main()
