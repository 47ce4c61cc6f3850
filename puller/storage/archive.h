// Safe unpacking of model archives (tar, tar.gz/bz2/xz, zip) with libarchive.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "puller/storage/storage.h"

namespace storage {

// True for names ending in .tar, .tar.gz, .tgz or .zip (any case).
bool isArchiveName(std::string_view name);
// True for the Content-Types upstream treats as archives (zip, tar, gzip).
bool isArchiveContentType(std::string_view contentType);

// Extracts `archive` into `destination` and removes the archive. Entries go to a staging folder
// inside the destination first and are moved into place only when the whole archive was read: an
// entry with an absolute path or "..", a link pointing outside the tree, or a device/fifo refuses
// the archive and leaves nothing behind. Entries merge into existing content as tar does: folders
// merge, files overwrite, and a file where a folder is (or the reverse) is an error. Files are
// written 0644 (0755 when executable), folders 0755.
Status extractArchive(const std::filesystem::path& archive,
                      const std::filesystem::path& destination);
// The same for an archive read from `fd` as it arrives (an image layer while it downloads; `fd`
// is read until the archive ends, not closed), named `name` in messages, keeping only the
// entries below the folder `subtree` ("models"), which land at the top of `destination`; other
// entries and whiteouts (".wh.*") are skipped, and a hard link to a file outside the subtree is
// refused. `kept` counts the entries written (folders included). Once the archive was read
// whole, `finish` runs (the download's own checks); nothing moves into `destination` unless it
// succeeds too.
Status extractStream(int fd, const std::string& name, const std::filesystem::path& destination,
                     std::string_view subtree, size_t& kept, const std::function<Status()>& finish);

}  // namespace storage
