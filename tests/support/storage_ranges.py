"""Serving a file the way object stores and CDNs do for the storage fakes: the whole file (200),
or with "Range: bytes=A-B" that part (206 with Content-Range). Standard library only."""
import os
import re


def send_file(handler, path, content_type="application/octet-stream"):
    """Answers `handler`'s request with the file at `path`, streamed in 64 KiB pieces."""
    size = os.path.getsize(path)
    first, last = 0, size - 1
    ranged = re.fullmatch(r"bytes=(\d+)-(\d+)", handler.headers.get("Range", ""))
    if ranged:
        first, last = int(ranged.group(1)), min(int(ranged.group(2)), size - 1)
        handler.send_response(206)
        handler.send_header("Content-Range", "bytes %d-%d/%d" % (first, last, size))
    else:
        handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(last - first + 1))
    handler.end_headers()
    with open(path, "rb") as f:
        f.seek(first)
        left = last - first + 1
        while left > 0 and (chunk := f.read(min(left, 1 << 16))):
            handler.wfile.write(chunk)
            left -= len(chunk)
