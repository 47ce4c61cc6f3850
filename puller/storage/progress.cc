#include "puller/storage/progress.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "puller/storage/util.h"

namespace storage {

namespace {

thread_local ProgressTracker* current = nullptr;

constexpr std::chrono::milliseconds kDefaultInterval = std::chrono::seconds(10);

std::string humanBytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t unit = 0;
  while (bytes >= 1024 && unit + 1 < std::size(kUnits)) {
    bytes /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, kUnits[unit]);
}

}  // namespace

void ProgressTracker::planFiles(size_t count) {
  std::lock_guard lock(mutex_);
  planned_ += count;
}

void ProgressTracker::planBytes(uint64_t total) {
  std::lock_guard lock(mutex_);
  listedBytes_ = total;
}

void ProgressTracker::fileDone() {
  std::lock_guard lock(mutex_);
  ++done_;
}

void ProgressTracker::addBytes(const std::string& path, uint64_t offset, bool firstWrite,
                               int64_t expected, uint64_t length) {
  std::lock_guard lock(mutex_);
  File& file = parts_[{path, offset}];
  if (firstWrite) {
    // Once per transfer, not per chunk: every transfer starts with its first write.
    paths_.insert(path);
    bytes_ -= file.bytes;
    file = {0, expected};
    // By its place in the model folder: the path is ours to show, unlike the URL it came from.
    auto relative = std::filesystem::path(path).lexically_relative(destination_).generic_string();
    current_ = relative.empty() || relative.starts_with("..")
                   ? std::filesystem::path(path).filename().generic_string()
                   : relative;
  }
  file.bytes += length;
  bytes_ += length;
}

ProgressSnapshot ProgressTracker::snapshot() const {
  std::lock_guard lock(mutex_);
  ProgressSnapshot out;
  // Downloads outside runParallel (a single http(s) file) plan nothing: each file started counts.
  out.filesPlanned = std::max(planned_, paths_.size());
  out.filesDone = std::min(done_, out.filesPlanned);
  out.bytes = bytes_;
  out.expectedKnown = !paths_.empty() && paths_.size() >= out.filesPlanned;
  for (const auto& [key, file] : parts_) {
    if (file.expected < 0) {
      out.expectedKnown = false;
      break;
    }
    out.bytesExpected += static_cast<uint64_t>(file.expected);
  }
  if (!out.expectedKnown) out.bytesExpected = 0;
  if (listedBytes_) {
    out.expectedKnown = true;
    out.bytesExpected = *listedBytes_;
  }
  out.currentFile = current_;
  return out;
}

ProgressTracker* currentProgress() {
  return current;
}

ScopedProgress::ScopedProgress(ProgressTracker* tracker) : previous_(current) {
  current = tracker;
}

ScopedProgress::~ScopedProgress() {
  current = previous_;
}

void countDownloaded(void* curl, const std::string& path, uint64_t offset, uint64_t bytesBefore,
                     uint64_t length) {
  ProgressTracker* tracker = current;
  if (tracker == nullptr) return;
  curl_off_t expected = -1;
  if (bytesBefore == 0) curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &expected);
  tracker->addBytes(path, offset, bytesBefore == 0, static_cast<int64_t>(expected), length);
}

std::string formatProgress(const std::string& label, const ProgressSnapshot& snapshot,
                           double bytesPerSecond) {
  std::string line = "progress of " + label + ": ";
  if (snapshot.expectedKnown) {
    double percent = snapshot.bytesExpected == 0 ? 100.0
                                                 : 100.0 * static_cast<double>(snapshot.bytes) /
                                                       static_cast<double>(snapshot.bytesExpected);
    line += fmt::format("{} of {} ({} of {} bytes, {:.0f}%)",
                        humanBytes(static_cast<double>(snapshot.bytes)),
                        humanBytes(static_cast<double>(snapshot.bytesExpected)), snapshot.bytes,
                        snapshot.bytesExpected, std::floor(percent));
  } else {
    line += fmt::format("{} ({} bytes)", humanBytes(static_cast<double>(snapshot.bytes)),
                        snapshot.bytes);
  }
  line += fmt::format(" at {}/s, {} of {} files left", humanBytes(bytesPerSecond),
                      snapshot.filesPlanned - snapshot.filesDone, snapshot.filesPlanned);
  if (!snapshot.currentFile.empty()) line += ", writing " + snapshot.currentFile;
  return line;
}

std::chrono::milliseconds progressInterval() {
  return envSeconds("STORAGE_PROGRESS_INTERVAL", kDefaultInterval, true);
}

ProgressReporter::ProgressReporter(const ProgressTracker& tracker, std::string label,
                                   std::chrono::milliseconds interval)
    : tracker_(tracker), label_(std::move(label)), interval_(interval) {
  thread_ = std::thread([this] { run(); });
}

ProgressReporter::~ProgressReporter() {
  stop();
}

void ProgressReporter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopped_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ProgressReporter::run() {
  using Clock = std::chrono::steady_clock;
  auto last = Clock::now();
  uint64_t lastBytes = 0;
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [this] { return stopped_; })) {
    ProgressSnapshot snapshot = tracker_.snapshot();
    // Sources that write no bytes through the HTTP client (git, local folders) have nothing to say.
    if (snapshot.filesPlanned == 0 && snapshot.bytes == 0) continue;
    auto now = Clock::now();
    double seconds = std::chrono::duration<double>(now - last).count();
    // A retry can take bytes back; the rate then reads as zero rather than negative.
    double rate = snapshot.bytes > lastBytes && seconds > 0
                      ? static_cast<double>(snapshot.bytes - lastBytes) / seconds
                      : 0.0;
    last = now;
    lastBytes = snapshot.bytes;
    // Logged under the lock, so that once stop() has taken it no line can follow.
    spdlog::info("{}", formatProgress(label_, snapshot, rate));
  }
}

}  // namespace storage
