#include "puller/storage/token_cache.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace storage::tokens {
namespace {

using Clock = std::chrono::steady_clock;

struct Entry {
  std::mutex fetching;  // held while the token is fetched, so callers share one fetch
  std::string token;
  Clock::time_point refreshAt;
  bool valid = false;
};

std::mutex tableMutex;

std::map<std::string, std::shared_ptr<Entry>>& table() {
  static auto* entries = new std::map<std::string, std::shared_ptr<Entry>>();
  return *entries;
}

std::shared_ptr<Entry> entryFor(const std::string& key) {
  std::lock_guard<std::mutex> lock(tableMutex);
  auto& entry = table()[key];
  if (!entry) entry = std::make_shared<Entry>();
  return entry;
}

}  // namespace

Status get(const std::string& key, const Fetch& fetch, std::string& token) {
  std::shared_ptr<Entry> entry = entryFor(key);
  std::lock_guard<std::mutex> lock(entry->fetching);
  const auto now = Clock::now();
  if (entry->valid && now < entry->refreshAt) {
    token = entry->token;
    return Status::success();
  }
  Fetched fetched;
  Status status = fetch(fetched);
  if (!status.ok) {
    entry->valid = false;
    return status;
  }
  // Azure and Google SDKs refresh about 5 minutes early; short-lived tokens (and the tests'
  // two-second ones) refresh at three quarters of their life instead.
  const std::chrono::milliseconds lifetime = std::max(fetched.lifetime, std::chrono::seconds(0));
  const std::chrono::milliseconds margin =
      std::min<std::chrono::milliseconds>(std::chrono::minutes(5), lifetime / 4);
  entry->token = std::move(fetched.token);
  entry->refreshAt = now + lifetime - margin;
  entry->valid = true;
  token = entry->token;
  return Status::success();
}

void invalidate(const std::string& key) {
  std::shared_ptr<Entry> entry = entryFor(key);
  std::lock_guard<std::mutex> lock(entry->fetching);
  entry->valid = false;
}

void invalidatePrefix(const std::string& prefix) {
  std::vector<std::shared_ptr<Entry>> matching;
  {
    std::lock_guard<std::mutex> lock(tableMutex);
    for (const auto& [key, entry] : table()) {
      if (key.starts_with(prefix)) matching.push_back(entry);
    }
  }
  for (const auto& entry : matching) {
    std::lock_guard<std::mutex> lock(entry->fetching);
    entry->valid = false;
  }
}

std::optional<std::chrono::seconds> secondsUntil(const std::string& rfc3339) {
  std::tm utc{};
  const char* end = strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &utc);
  if (end == nullptr) return std::nullopt;
  if (*end == '.') {
    ++end;
    while (*end >= '0' && *end <= '9')
      ++end;
  }
  if (*end != 'Z' || end[1] != '\0') return std::nullopt;
  const std::time_t at = timegm(&utc);
  return std::chrono::seconds(at - std::time(nullptr));
}

}  // namespace storage::tokens
