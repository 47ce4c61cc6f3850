#!/usr/bin/env python3
"""Writes the archive fixtures of the storage tests into a folder (standard library only):
good.tar.gz, good.tar, good.zip (model/config.json, model/weights/w.bin, a safe symlink), and
hostile archives that try to escape: dotdot.tar.gz, absolute.tar, symlink_out.tar.gz,
hardlink_out.tar, dotdot.zip. Each hostile archive also holds a harmless file before the bad
entry, so a test can check that nothing at all is left behind."""
import io
import sys
import tarfile
import zipfile


def add_file(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_link(tar, name, target, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    tar.addfile(info)


def good(tar):
    add_file(tar, "model/config.json", b'{"name":"good"}')
    add_file(tar, "model/weights/w.bin", bytes(range(256)) * 64)
    add_link(tar, "model/latest", "weights/w.bin", tarfile.SYMTYPE)


def main(out):
    with tarfile.open(out + "/good.tar.gz", "w:gz") as tar:
        good(tar)
    with tarfile.open(out + "/good.tar", "w") as tar:
        good(tar)
    with zipfile.ZipFile(out + "/good.zip", "w") as z:
        z.writestr("model/config.json", b'{"name":"good"}')
        z.writestr("model/weights/w.bin", bytes(range(256)) * 64)
    with tarfile.open(out + "/dotdot.tar.gz", "w:gz") as tar:
        add_file(tar, "harmless.txt", b"first")
        add_file(tar, "../../escaped.txt", b"evil")
    with tarfile.open(out + "/absolute.tar", "w") as tar:
        add_file(tar, "harmless.txt", b"first")
        add_file(tar, out + "/absolute-escaped.txt", b"evil")
    with tarfile.open(out + "/symlink_out.tar.gz", "w:gz") as tar:
        add_file(tar, "harmless.txt", b"first")
        add_link(tar, "link", "../..", tarfile.SYMTYPE)
        add_file(tar, "link/escaped-through-link.txt", b"evil")
    with tarfile.open(out + "/hardlink_out.tar", "w") as tar:
        add_file(tar, "harmless.txt", b"first")
        add_link(tar, "hard", "../../etc/passwd", tarfile.LNKTYPE)
    with zipfile.ZipFile(out + "/dotdot.zip", "w") as z:
        z.writestr("harmless.txt", b"first")
        z.writestr("../../escaped-zip.txt", b"evil")


if __name__ == "__main__":
    main(sys.argv[1])
