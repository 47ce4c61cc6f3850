// Local sources: plain paths, file://path and pvc://<claim>/<path>. A PVC is expected mounted at
// KSERVE_PVC_MOUNT_ROOT (default /mnt/pvc, where KServe mounts it). Content is copied, not
// symlinked: the model folder is shared with the model server, which does not see our mounts.
// Symbolic links are followed, as `cp -rL` does: a Hugging Face cache snapshot links every file
// into ../../blobs, outside the folder named.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "puller/storage/providers.h"
#include "puller/storage/util.h"

namespace storage {

namespace {

struct FolderId {
  dev_t device;
  ino_t inode;
  bool operator==(const FolderId&) const = default;
};

std::string errnoText() {
  return std::error_code(errno, std::generic_category()).message();
}

// Copies the folder `from` into `to`. `relative` is `from` relative to the source, for messages
// and the list of files; `open` holds the folders being copied and the destination, so that a
// link back to one of them (a loop, or the destination inside the source) is refused instead
// of copied without end. The patterns select among the top-level entries only, as upstream's.
Status copyFolder(const fs::path& from, const fs::path& to, const fs::path& relative,
                  const Patterns& patterns, std::vector<FolderId>& open, Downloaded& out) {
  std::error_code ec;
  const std::string shown = relative.empty() ? "the folder" : relative.string();
  auto entries = listFolder(from, ec);
  if (ec) return Status::failure("cannot read " + shown + ": " + ec.message());
  fs::create_directories(to, ec);
  if (ec) return Status::failure("cannot create " + to.string() + ": " + ec.message());
  for (const auto& entry : entries) {
    const fs::path name = entry.path().filename();
    const fs::path path = relative / name;
    if (relative.empty() && !patterns.keeps(name.string())) continue;
    struct stat info {};
    if (::stat(entry.path().c_str(), &info) != 0) {
      return Status::failure("cannot read " + path.string() + ": " + errnoText());
    }
    if (S_ISDIR(info.st_mode)) {
      const FolderId id{info.st_dev, info.st_ino};
      if (std::find(open.begin(), open.end(), id) != open.end()) {
        return Status::failure(path.string() + " would copy a folder into itself",
                               /*permanent=*/true);
      }
      open.push_back(id);
      Status status = copyFolder(entry.path(), to / name, path, patterns, open, out);
      open.pop_back();
      if (!status.ok) return status;
    } else if (S_ISREG(info.st_mode)) {
      fs::copy_file(entry.path(), to / name, fs::copy_options::overwrite_existing, ec);
      if (ec) return Status::failure("cannot copy " + path.string() + ": " + ec.message());
      out.files.push_back(path);
    } else {
      return Status::failure(path.string() + " is neither a file nor a folder", true);
    }
  }
  return Status::success();
}

}  // namespace

Status downloadLocal(const std::string& uri, const fs::path& destination,
                     const DownloadOptions& options, Downloaded& out) {
  fs::path source;
  if (uri.starts_with("pvc://")) {
    std::string rest = uri.substr(6);
    size_t slash = rest.find('/');
    if (rest.empty() || slash == 0) return Status::failure("expected pvc://<claim>/<path>", true);
    std::string root = env("KSERVE_PVC_MOUNT_ROOT");
    source = root.empty() ? fs::path("/mnt/pvc") : fs::path(root);
    if (slash != std::string::npos) source /= rest.substr(slash + 1);
  } else if (uri.starts_with("file://")) {
    source = uri.substr(7);
  } else {
    source = uri;
  }
  std::error_code ec;
  if (!fs::exists(source, ec)) return Status::failure("no such file or folder");
  if (fs::equivalent(source, destination, ec)) return Status::success();  // already in place
  struct stat sourceInfo {};
  struct stat destinationInfo {};
  if (::stat(source.c_str(), &sourceInfo) != 0)
    return Status::failure("cannot read: " + errnoText());
  if (S_ISDIR(sourceInfo.st_mode)) {
    fs::create_directories(destination, ec);
    if (::stat(destination.c_str(), &destinationInfo) != 0) {
      return Status::failure("cannot create " + destination.string() + ": " + errnoText());
    }
    std::vector<FolderId> open{{sourceInfo.st_dev, sourceInfo.st_ino},
                               {destinationInfo.st_dev, destinationInfo.st_ino}};
    Status status = copyFolder(source, destination, {}, options.patterns, open, out);
    if (!status.ok) return status;
    if (out.files.empty()) {
      return Status::failure(options.patterns.empty()
                                 ? "the folder is empty"
                                 : "the allow/ignore patterns leave no file of the folder");
    }
    return Status::success();
  }
  fs::path name = source.filename();
  fs::copy_file(source, destination / name, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::failure("cannot copy: " + ec.message());
  out.files.push_back(name);
  return Status::success();
}

}  // namespace storage
