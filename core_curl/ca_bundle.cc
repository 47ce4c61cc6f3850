#include "core_curl/ca_bundle.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

namespace core_curl {

namespace {

constexpr std::chrono::seconds kCheckInterval{1};
constexpr std::string_view kPemCertificate = "-----BEGIN CERTIFICATE-----";

std::optional<std::string> readWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

}  // namespace

CaBundle::CaBundle(std::string customPath, std::string systemPath)
    : customPath_(std::move(customPath)), systemPath_(std::move(systemPath)) {}

std::shared_ptr<const std::string> CaBundle::current(std::chrono::steady_clock::time_point now) {
  if (lastCheck_ && now - *lastCheck_ < kCheckInterval) return bundle_;
  // A stat of one local file at most once a second is cheaper than a round trip through the
  // thread pool for every event, and it is what keeps a rotated CA from being missed.
  std::optional<FileStamp> stamp;
  struct stat info {};
  if (::stat(customPath_.c_str(), &info) == 0) {
    stamp = FileStamp{
        info.st_ino, info.st_size,
        static_cast<long long>(info.st_mtim.tv_sec) * 1'000'000'000LL + info.st_mtim.tv_nsec};
  }
  if (!lastCheck_ || stamp != stamp_) reload(stamp);
  lastCheck_ = now;
  stamp_ = stamp;
  return bundle_;
}

void CaBundle::reload(const std::optional<FileStamp>& stamp) {
  bundle_ = nullptr;
  std::optional<std::string> custom = stamp ? readWholeFile(customPath_) : std::nullopt;
  if (!custom) {
    spdlog::warn("logger: no CA file at {}; https sinks are verified with the system roots",
                 customPath_);
    return;
  }
  if (custom->find(kPemCertificate) == std::string::npos) {
    spdlog::error("logger: {} holds no PEM certificate; using the system roots only", customPath_);
    return;
  }
  auto combined = std::make_shared<std::string>(readWholeFile(systemPath_).value_or(""));
  if (!combined->empty() && combined->back() != '\n') *combined += '\n';
  *combined += *custom;
  if (combined->back() != '\n') *combined += '\n';
  spdlog::info("logger: trusting the CA certificates of {} besides the system roots", customPath_);
  bundle_ = std::move(combined);
}

}  // namespace core_curl
