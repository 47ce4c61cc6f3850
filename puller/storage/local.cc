// Local sources: plain paths, file://path and pvc://<claim>/<path>. A PVC is expected mounted at
// KSERVE_PVC_MOUNT_ROOT (default /mnt/pvc, where KServe mounts it). Content is copied, not
// symlinked: the model folder is shared with the model server, which does not see our mounts.
#include <system_error>

#include "puller/storage/providers.h"
#include "puller/storage/util.h"

namespace storage {

Status downloadLocal(const std::string& uri, const fs::path& destination, const DownloadOptions&,
                     Downloaded& out) {
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
  if (fs::is_directory(source, ec)) {
    for (const auto& entry : fs::recursive_directory_iterator(source, ec)) {
      fs::path relative = fs::relative(entry.path(), source, ec);
      if (entry.is_directory()) {
        fs::create_directories(destination / relative, ec);
      } else if (entry.is_regular_file()) {
        fs::create_directories((destination / relative).parent_path(), ec);
        fs::copy_file(entry.path(), destination / relative, fs::copy_options::overwrite_existing,
                      ec);
        out.files.push_back(relative);
      }
      if (ec) return Status::failure("cannot copy " + relative.string() + ": " + ec.message());
    }
    if (ec) return Status::failure("cannot read the folder: " + ec.message());
    if (out.files.empty()) return Status::failure("the folder is empty");
    return Status::success();
  }
  fs::path name = source.filename();
  fs::copy_file(source, destination / name, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::failure("cannot copy: " + ec.message());
  out.files.push_back(name);
  return Status::success();
}

}  // namespace storage
