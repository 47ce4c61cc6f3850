#include "puller/storage/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>

#include <functional>
#include <memory>
#include <optional>
#include <system_error>

#include "puller/storage/util.h"

namespace storage {
namespace fs = std::filesystem;

namespace {

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// A link target that cannot leave the tree: relative and never climbing with "..". Links that
// only descend stay inside even when they go through other links, since every link descends.
bool safeLinkTarget(std::string_view target) {
  if (target.empty() || target.front() == '/') return false;
  size_t start = 0;
  while (start <= target.size()) {
    size_t slash = target.find('/', start);
    if (slash == std::string_view::npos) slash = target.size();
    if (target.substr(start, slash - start) == "..") return false;
    start = slash + 1;
  }
  return true;
}

std::string errorText(archive* a) {
  const char* text = archive_error_string(a);
  return text != nullptr ? text : "unknown libarchive error";
}

// Moves the content of `from` into `to` as tar does over existing content: a folder merges into
// a folder of the same name, anything else replaces a file or link of the same name. A file and a
// folder with one name is refused rather than one silently deleting the other. Links already in
// the destination are never followed.
Status mergeInto(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  auto entries = listFolder(from, ec);
  if (ec) return Status::failure("cannot read " + from.string() + ": " + ec.message());
  for (const auto& entry : entries) {
    fs::path target = to / entry.path().filename();
    bool isFolder = entry.symlink_status(ec).type() == fs::file_type::directory;
    if (ec) return Status::failure("cannot read " + entry.path().string() + ": " + ec.message());
    fs::file_type existing = fs::symlink_status(target, ec).type();
    if (ec && existing != fs::file_type::not_found) {
      return Status::failure("cannot read " + target.string() + ": " + ec.message());
    }
    if (isFolder && existing == fs::file_type::directory) {
      Status status = mergeInto(entry.path(), target);
      if (!status.ok) return status;
      continue;
    }
    if (existing == fs::file_type::directory ||
        (isFolder && existing != fs::file_type::not_found)) {
      return Status::failure("cannot extract " + target.string() + ": the destination has a " +
                             (isFolder ? "file" : "folder") + " of that name");
    }
    fs::rename(entry.path(), target, ec);
    if (ec) return Status::failure("cannot move " + target.string() + ": " + ec.message());
  }
  return Status::success();
}

// Within `subtree` (a folder name; "" for the whole archive), a relative path's place below
// it, or nullopt for paths outside it and for the folder itself.
std::optional<fs::path> placeInSubtree(const fs::path& relative, std::string_view subtree) {
  if (subtree.empty()) return relative;
  auto part = relative.begin();
  if (part == relative.end() || *part != subtree) return std::nullopt;
  fs::path rest;
  for (++part; part != relative.end(); ++part)
    rest /= *part;
  if (rest.empty()) return std::nullopt;
  return rest;
}

// Opens the reader on its input (a file, a stream); libarchive's status.
using Opener = std::function<int(archive*)>;

Status extractInto(const Opener& open, const std::string& name, const fs::path& staging,
                   std::string_view subtree, size_t& kept) {
  std::unique_ptr<archive, decltype(&archive_read_free)> reader(archive_read_new(),
                                                                archive_read_free);
  std::unique_ptr<archive, decltype(&archive_write_free)> writer(archive_write_disk_new(),
                                                                 archive_write_free);
  archive_read_support_filter_all(reader.get());
  archive_read_support_format_tar(reader.get());
  archive_read_support_format_gnutar(reader.get());
  archive_read_support_format_zip(reader.get());
  // Ownership, ACLs and extended attributes from the archive are ignored on purpose; the
  // per-entry checks below do the path validation, so every pathname handed over is absolute.
  archive_write_disk_set_options(writer.get(), ARCHIVE_EXTRACT_TIME);
  if (open(reader.get()) != ARCHIVE_OK) {
    return Status::failure("cannot open archive " + name + ": " + errorText(reader.get()));
  }
  archive_entry* entry = nullptr;
  int result = ARCHIVE_OK;
  while ((result = archive_read_next_header(reader.get(), &entry)) == ARCHIVE_OK) {
    const char* rawPath = archive_entry_pathname(entry);
    std::string entryName = rawPath != nullptr ? rawPath : "";
    auto type = archive_entry_filetype(entry);
    auto relative = safeRelativePath(entryName);
    if (!relative) {
      std::string trimmed = entryName;
      while (!trimmed.empty() && trimmed.back() == '/')
        trimmed.pop_back();
      if (type == AE_IFDIR && (trimmed.empty() || trimmed == ".")) continue;  // "./" itself
      return Status::failure("archive " + name + ": entry \"" + entryName +
                             "\" would be written outside the destination; refused");
    }
    // Image layers mark deletions of lower layers' files with ".wh." entries; a model folder
    // is written whole by one layer, so they are not applied.
    relative = placeInSubtree(*relative, subtree);
    if (!relative || relative->filename().string().starts_with(".wh.")) {
      archive_read_data_skip(reader.get());
      continue;
    }
    ++kept;
    const char* hardlink = archive_entry_hardlink(entry);
    if (hardlink != nullptr) {
      auto linkRelative = safeRelativePath(hardlink);
      if (linkRelative) linkRelative = placeInSubtree(*linkRelative, subtree);
      if (!linkRelative) {
        return Status::failure(
            "archive " + name + ": hard link \"" + entryName + "\" points outside the " +
            (subtree.empty() ? "destination" : std::string(subtree) + " folder") + "; refused");
      }
      archive_entry_set_hardlink(entry, (staging / *linkRelative).c_str());
    } else if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(entry);
      if (target == nullptr || !safeLinkTarget(target)) {
        return Status::failure("archive " + name + ": symbolic link \"" + entryName +
                               "\" points outside the destination; refused");
      }
    } else if (type == AE_IFDIR) {
      archive_entry_set_perm(entry, 0755);
    } else if (type == AE_IFREG) {
      archive_entry_set_perm(entry, (archive_entry_perm(entry) & 0111) != 0 ? 0755 : 0644);
    } else {
      return Status::failure("archive " + name + ": entry \"" + entryName +
                             "\" is a device, fifo or socket; refused");
    }
    archive_entry_set_pathname(entry, (staging / *relative).c_str());
    if (archive_write_header(writer.get(), entry) != ARCHIVE_OK) {
      return Status::failure("archive " + name + ": cannot write \"" + entryName +
                             "\": " + errorText(writer.get()));
    }
    const void* block = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int dataResult = ARCHIVE_OK;
    while ((dataResult = archive_read_data_block(reader.get(), &block, &size, &offset)) ==
           ARCHIVE_OK) {
      if (archive_write_data_block(writer.get(), block, size, offset) != ARCHIVE_OK) {
        return Status::failure("archive " + name + ": cannot write \"" + entryName +
                               "\": " + errorText(writer.get()));
      }
    }
    if (dataResult != ARCHIVE_EOF) {
      return Status::failure("archive " + name + ": corrupt entry \"" + entryName +
                             "\": " + errorText(reader.get()));
    }
    if (archive_write_finish_entry(writer.get()) != ARCHIVE_OK) {
      return Status::failure("archive " + name + ": cannot finish \"" + entryName +
                             "\": " + errorText(writer.get()));
    }
  }
  if (result != ARCHIVE_EOF) {
    return Status::failure("archive " + name +
                           " is not a readable tar or zip: " + errorText(reader.get()));
  }
  if (archive_write_close(writer.get()) != ARCHIVE_OK) {
    return Status::failure("archive " + name + ": " + errorText(writer.get()));
  }
  return Status::success();
}

}  // namespace

bool isArchiveName(std::string_view name) {
  std::string lower = toLower(name);
  return endsWith(lower, ".tar") || endsWith(lower, ".tar.gz") || endsWith(lower, ".tgz") ||
         endsWith(lower, ".zip");
}

bool isArchiveContentType(std::string_view contentType) {
  std::string lower = toLower(contentType);
  for (const char* type : {"application/zip", "application/x-zip-compressed", "application/x-tar",
                           "application/x-gtar", "application/x-gzip", "application/gzip"}) {
    if (lower.find(type) != std::string::npos) return true;
  }
  return false;
}

namespace {

// Extracts into a fresh staging folder inside `destination`; once the archive was read whole,
// `beforeMerge` runs, and the staged entries move into place only when it succeeds too.
Status extractStaged(const Opener& open, const std::string& name, const fs::path& destination,
                     std::string_view subtree, size_t& kept,
                     const std::function<Status()>& beforeMerge) {
  std::string pattern = (destination / ".extract-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return Status::failure("cannot create a staging folder in " + destination.string());
  }
  fs::path staging = pattern;
  Status status = extractInto(open, name, staging, subtree, kept);
  if (status.ok) status = beforeMerge();
  if (status.ok) status = mergeInto(staging, destination);
  std::error_code ec;
  fs::remove_all(staging, ec);
  return status;
}

}  // namespace

Status extractArchive(const fs::path& archivePath, const fs::path& destination) {
  size_t kept = 0;
  auto open = [&](archive* reader) {
    return archive_read_open_filename(reader, archivePath.c_str(), 1 << 16);
  };
  return extractStaged(open, archivePath.filename().string(), destination, "", kept, [&] {
    // Removed before the move, so an entry with the archive's own name survives.
    std::error_code ec;
    fs::remove(archivePath, ec);
    return Status::success();
  });
}

Status extractStream(int fd, const std::string& name, const fs::path& destination,
                     std::string_view subtree, size_t& kept,
                     const std::function<Status()>& finish) {
  auto open = [&](archive* reader) { return archive_read_open_fd(reader, fd, 1 << 16); };
  return extractStaged(open, name, destination, subtree, kept, finish);
}

}  // namespace storage
