#!/bin/bash
# Lists the Debian packages that a runtime image needs for the given binaries: for every shared
# library a binary links directly (its ELF NEEDED entries), the package owning the file ldd
# resolves it to. Libraries those libraries need come with their packages' dependencies, so the
# list is what `apt-get install` must be given, no more. Prints one package per line, sorted.
# Usage: deploy/runtime-packages.sh BINARY [BINARY...]
# Run it on Debian bookworm (the Dockerfile's build stage), where the names match the image.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 BINARY [BINARY...]" >&2
  exit 2
fi

# Prints the package owning a file, trying the /usr-merged twin of the path too (bookworm keeps
# some libraries under /lib and others under /usr/lib, and ldd may name either).
owner() {
  local path=$1 real candidate
  real=$(readlink -f "$path")
  for candidate in "$path" "$real" "/usr$path" "/usr$real" "${path#/usr}" "${real#/usr}"; do
    if dpkg -S "$candidate" >/dev/null 2>&1; then
      dpkg -S "$candidate" | head -n 1 | cut -d: -f1
      return 0
    fi
  done
  echo "runtime-packages: no Debian package owns $path" >&2
  return 1
}

for binary in "$@"; do
  if [ ! -x "$binary" ]; then
    echo "runtime-packages: $binary is not an executable" >&2
    exit 1
  fi
  resolved=$(ldd "$binary")
  readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r library; do
    path=$(awk -v lib="$library" '$1 == lib && $2 == "=>" { print $3 }' <<<"$resolved")
    if [ -z "$path" ] || [ "$path" = "not" ]; then
      echo "runtime-packages: $binary: $library is not found by ldd" >&2
      exit 1
    fi
    owner "$path"
  done
done | sort -u
