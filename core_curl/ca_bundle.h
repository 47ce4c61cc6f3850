// The certificates trusted for https peers: the system roots plus a custom CA file (the logger's
// --logger-ca-cert-dir/--logger-ca-cert-file, the router's --ca-file), read once and again
// whenever the file changes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace core_curl {

inline constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

class CaBundle {
 public:
  explicit CaBundle(std::string customPath, std::string systemPath = kSystemCaBundle);

  // The PEM roots to hand to curl: the system bundle followed by the custom file; null when the
  // custom file is missing or holds no certificate (curl then uses its default store). The file
  // is looked at no more than once per second; a change of inode, size or modification time
  // (a ConfigMap update swaps a symlink) reloads it.
  std::shared_ptr<const std::string> current(std::chrono::steady_clock::time_point now);

 private:
  struct FileStamp {
    ino_t inode = 0;
    off_t size = 0;
    long long mtimeNanos = 0;
    bool operator==(const FileStamp&) const = default;
  };

  void reload(const std::optional<FileStamp>& stamp);

  std::string customPath_;
  std::string systemPath_;
  std::optional<std::chrono::steady_clock::time_point> lastCheck_;
  std::optional<FileStamp> stamp_;
  std::shared_ptr<const std::string> bundle_;
};

}  // namespace core_curl
