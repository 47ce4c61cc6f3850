#include "puller/model_dir.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <system_error>

#include "puller/storage/util.h"

namespace puller {
namespace fs = std::filesystem;

Tracker recoverModelDir(const fs::path& modelDir) {
  Tracker tracker;
  std::error_code ec;
  auto entries = storage::listFolder(modelDir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    spdlog::warn("puller: cannot read model dir {}: {}", modelDir.string(), ec.message());
  }
  for (const auto& entry : entries) {
    std::string name = entry.path().filename().string();
    if (name.starts_with(".")) {
      // Staging and replaced folders (".<model>.tmp-*", ".<model>.old-*") from a crash.
      if (name.find(".tmp-") != std::string::npos || name.find(".old-") != std::string::npos) {
        fs::remove_all(entry.path(), ec);
        spdlog::info("puller: removed leftover temporary folder {}", entry.path().string());
      }
      continue;
    }
    if (!entry.is_directory(ec) || !isValidModelName(name)) continue;
    auto files = storage::listFolder(entry.path(), ec);
    if (ec) {
      spdlog::warn("puller: model {}: cannot read {}: {}", name, entry.path().string(),
                   ec.message());
    }
    for (const auto& file : files) {
      std::string fileName = file.path().filename().string();
      if (!fileName.starts_with("SUCCESS.") || !file.is_regular_file(ec)) continue;
      std::ifstream in(file.path());
      std::stringstream text;
      text << in.rdbuf();
      auto spec = parseModelSpec(text.str());
      if (!spec) {
        spdlog::warn("puller: model {}: ignoring unreadable marker {}", name, file.path().string());
        continue;
      }
      tracker[name] = *spec;
      spdlog::info("puller: model {}: recovered from {}", name, file.path().string());
      break;
    }
  }
  return tracker;
}

bool hasMarker(const fs::path& modelDir, const std::string& name, const ModelSpec& spec) {
  std::error_code ec;
  return fs::is_regular_file(modelDir / name / spec.markerName(), ec);
}

std::string makeStagingFolder(const fs::path& modelDir, const std::string& name,
                              std::string& error) {
  std::string pattern = (modelDir / ("." + name + ".tmp-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    error = "cannot create a temporary folder in " + modelDir.string() + ": " +
            std::error_code(errno, std::generic_category()).message();
    return "";
  }
  // Readable by the model server, which may run as another user.
  ::chmod(pattern.c_str(), 0755);
  return pattern;
}

bool installModel(const fs::path& modelDir, const std::string& name, const ModelSpec& spec,
                  const fs::path& staging, std::string& error) {
  {
    std::ofstream marker(staging / spec.markerName(), std::ios::trunc);
    marker << spec.toJson();
    marker.close();
    if (!marker) {
      error = "cannot write the SUCCESS marker";
      return false;
    }
  }
  fs::path target = modelDir / name;
  std::error_code ec;
  fs::path replaced;
  if (fs::exists(target, ec)) {
    std::string pattern = (modelDir / ("." + name + ".old-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      error = "cannot create a temporary folder in " + modelDir.string();
      return false;
    }
    replaced = pattern;
    fs::rename(target, replaced, ec);  // onto the empty folder, atomically
    if (ec) {
      error = "cannot move the old " + target.string() + " aside: " + ec.message();
      fs::remove(replaced, ec);
      return false;
    }
  }
  fs::rename(staging, target, ec);
  if (ec) {
    error = "cannot rename " + staging.string() + " to " + target.string() + ": " + ec.message();
    return false;
  }
  if (!replaced.empty()) fs::remove_all(replaced, ec);
  return true;
}

}  // namespace puller
