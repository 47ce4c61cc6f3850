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

# The resolved path of every directly linked library, one per line.
libraries=()
for binary in "$@"; do
  if [ ! -f "$binary" ]; then
    echo "runtime-packages: $binary does not exist" >&2
    exit 1
  fi
  resolved=$(ldd "$binary")
  for library in $(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    # The dynamic loader (NEEDED by a binary that calls dlopen) is part of libc6.
    [[ $library == ld-linux* ]] && continue
    # "libx.so.1 => /path (addr)", or "/path (addr)" for the dynamic loader.
    path=$(awk -v lib="$library" '
      $1 == lib && $2 == "=>" { print $3; exit }
      { n = split($1, parts, "/"); if (n > 1 && parts[n] == lib) { print $1; exit } }
    ' <<<"$resolved")
    if [ -z "$path" ] || [ "$path" = "not" ]; then
      echo "runtime-packages: $binary: ldd does not find $library" >&2
      exit 1
    fi
    libraries+=("$path")
  done
done

# dpkg knows each file under the name its package ships it as: /lib/... or /usr/lib/..., the
# symlink or its target. Ask once about every spelling and keep what dpkg answers.
candidates=()
for path in "${libraries[@]}"; do
  real=$(readlink -f "$path")
  candidates+=("$path" "$real" "/usr$path" "/usr$real" "${path#/usr}" "${real#/usr}")
done
declare -A owner
while IFS= read -r line; do
  owner["${line#*: }"]=${line%%:*}
done < <(dpkg -S "${candidates[@]}" 2>/dev/null || true)

for path in "${libraries[@]}"; do
  real=$(readlink -f "$path")
  found=
  for candidate in "$path" "$real" "/usr$path" "/usr$real" "${path#/usr}" "${real#/usr}"; do
    if [ -n "${owner[$candidate]:-}" ]; then
      found=${owner[$candidate]}
      break
    fi
  done
  if [ -z "$found" ]; then
    echo "runtime-packages: no Debian package owns $path" >&2
    exit 1
  fi
  echo "$found"
done | sort -u
