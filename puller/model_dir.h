// The model folder on disk: SUCCESS markers, recovery at start, and the atomic install of a
// downloaded model (temporary folder beside the target, renamed into place).
#pragma once

#include <filesystem>
#include <string>

#include "puller/model_config.h"

namespace puller {

// Reads `<modelDir>/<name>/SUCCESS.*` for every model folder and returns what it finds; removes
// temporary folders a crash left behind. Unreadable markers are logged and skipped.
Tracker recoverModelDir(const std::filesystem::path& modelDir);

// True when `<modelDir>/<name>` holds the marker of `spec`.
bool hasMarker(const std::filesystem::path& modelDir, const std::string& name,
               const ModelSpec& spec);

// A new empty temporary folder `<modelDir>/.<name>.tmp-XXXXXX` (mode 0755); "" on failure.
std::string makeStagingFolder(const std::filesystem::path& modelDir, const std::string& name,
                              std::string& error);

// Writes the marker into `staging`, then renames it to `<modelDir>/<name>`, replacing any folder
// there. On failure returns false with the cause; the caller removes the staging folder.
bool installModel(const std::filesystem::path& modelDir, const std::string& name,
                  const ModelSpec& spec, const std::filesystem::path& staging, std::string& error);

}  // namespace puller
