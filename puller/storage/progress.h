// Download progress a person can read: a tracker the transfers feed (bytes as they are written,
// files as they finish) and a reporter that logs it at an interval while a download runs.
// Lines name the download by its redacted URI and files by their path in the model folder, never
// by a URL, so no query string, SAS token or user info reaches the log.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace storage {

// What a tracker holds at one moment.
struct ProgressSnapshot {
  size_t filesPlanned = 0;  // files the download will fetch, as far as known
  size_t filesDone = 0;
  uint64_t bytes = 0;  // bytes written by the latest transfer of each file (or part of one)
  // The total size, when the listing gave it or every planned file's size is known (0 and false
  // otherwise).
  uint64_t bytesExpected = 0;
  bool expectedKnown = false;
  std::string currentFile;  // the file most recently written to, relative to the model folder
};

// Thread-safe counters for one download. A file (or a part of one) fetched again, a retry,
// replaces its earlier bytes instead of adding to them, so the bytes never pass the total.
class ProgressTracker {
 public:
  explicit ProgressTracker(std::string destination) : destination_(std::move(destination)) {}

  // The download will fetch `count` more files (runParallel's items).
  void planFiles(size_t count);
  // The listing gives the download's total size up front; it then stands over Content-Lengths.
  void planBytes(uint64_t total);
  void fileDone();
  // A transfer into `path` from `offset` on (0 for a whole file, the part's start for ranged
  // parts) wrote `length` bytes; `firstWrite` starts a new transfer of that part, whose size is
  // `expected` (negative: unknown).
  void addBytes(const std::string& path, uint64_t offset, bool firstWrite, int64_t expected,
                uint64_t length);
  ProgressSnapshot snapshot() const;

 private:
  struct File {
    uint64_t bytes = 0;
    int64_t expected = -1;
  };
  const std::string destination_;
  mutable std::mutex mutex_;
  size_t planned_ = 0;
  size_t done_ = 0;
  uint64_t bytes_ = 0;
  std::optional<uint64_t> listedBytes_;
  std::map<std::pair<std::string, uint64_t>, File> parts_;  // by path and offset
  std::set<std::string> paths_;
  std::string current_;
};

// The tracker the downloads on this thread feed (nullptr: none). runParallel hands it to its
// workers, so providers need not pass it down.
ProgressTracker* currentProgress();

// Makes `tracker` the current one of this thread for the scope's lifetime.
class ScopedProgress {
 public:
  explicit ScopedProgress(ProgressTracker* tracker);
  ~ScopedProgress();
  ScopedProgress(const ScopedProgress&) = delete;
  ScopedProgress& operator=(const ScopedProgress&) = delete;

 private:
  ProgressTracker* previous_;
};

// Called by the HTTP client for each chunk written to a file; a no-op without a current tracker.
// `curl` is the transfer's easy handle (for its Content-Length), `offset` where the transfer
// writes in the file, `bytesBefore` what the transfer had written before this chunk.
void countDownloaded(void* curl, const std::string& path, uint64_t offset, uint64_t bytesBefore,
                     uint64_t length);

// One progress line, e.g. "progress of s3://bucket/model: 12.0 MiB of 48.0 MiB (12582912 of
// 50331648 bytes, 25%) at 1.5 MiB/s, 2 of 3 files left, writing weights/part-1.bin".
std::string formatProgress(const std::string& label, const ProgressSnapshot& snapshot,
                           double bytesPerSecond);

// The interval from STORAGE_PROGRESS_INTERVAL (seconds; 0 turns progress off; default 10 s).
// A value that is not a non-negative number is ignored with a warning.
std::chrono::milliseconds progressInterval();

// Logs the tracker every `interval` (spdlog::info) until stopped. A download that ends within
// the first interval logs nothing; nothing is logged once stop() has returned.
class ProgressReporter {
 public:
  ProgressReporter(const ProgressTracker& tracker, std::string label,
                   std::chrono::milliseconds interval);
  ~ProgressReporter();
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  void stop();

 private:
  void run();

  const ProgressTracker& tracker_;
  const std::string label_;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace storage
