#include "puller/storage/fetch.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/util/backoff.h"

#include "puller/storage/parallel.h"
#include "puller/storage/progress.h"

namespace storage {
namespace {

// One GET: a whole object, or one range of a large one.
struct Part {
  size_t object = 0;
  ByteRange range;
  bool ranged = false;
};

// An object's file while its parts are fetched: opened by the first part that starts, closed
// by the last that ends, so a model of many files keeps only the files in flight open.
struct OpenFile {
  std::mutex mutex;
  bool started = false;
  Status opened;
  int fd = -1;
  fs::path path;
  size_t partsLeft = 0;

  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
};

// Creates (or truncates, unless it holds the object's first bytes) the object's file; a ranged
// object's file gets its listed size up front, so the parts can land anywhere in it and a full
// disk fails now rather than near the end.
Status openFile(const fs::path& destination, const SelectedObject& object, bool preallocate,
                OpenFile& file) {
  Status prepared = prepareFile(destination, object.relative, file.path);
  if (!prepared.ok) return prepared;
  const int truncate = object.present > 0 ? 0 : O_TRUNC;
  file.fd = ::open(file.path.c_str(), O_WRONLY | O_CREAT | truncate | O_CLOEXEC, 0666);
  if (file.fd < 0) {
    return Status::failure("cannot write " + file.path.string() + ": " + std::strerror(errno));
  }
  if (!preallocate) return Status::success();
  const auto size = static_cast<off_t>(object.size);
  int error = ::posix_fallocate(file.fd, 0, size);
  // Filesystems without fallocate: glibc would emulate it by writing a byte per block, so a
  // sparse file of the right size does instead.
  if (error == EOPNOTSUPP || error == EINVAL) error = ::ftruncate(file.fd, size) == 0 ? 0 : errno;
  if (error != 0) {
    return Status::failure("cannot make room for " + file.path.string() + " (" +
                           std::to_string(object.size) + " bytes): " + std::strerror(error));
  }
  return Status::success();
}

class Fetcher {
 public:
  Fetcher(const std::vector<SelectedObject>& objects, const fs::path& destination,
          const ObjectSource& source, const std::atomic<bool>* cancel)
      : objects_(objects),
        destination_(destination),
        source_(source),
        cancel_(cancel),
        files_(objects.size()) {
    for (size_t i = 0; i < objects.size(); ++i) {
      const uint64_t size = objects[i].size;
      if (size < kRangedThreshold && objects[i].present == 0) {
        parts_.push_back({i, {}, false});
        files_[i].partsLeft = 1;
        continue;
      }
      for (uint64_t first = objects[i].present; first < size; first += kPartSize) {
        parts_.push_back({i, {first, std::min(size, first + kPartSize) - 1}, true});
        ++files_[i].partsLeft;
      }
    }
  }

  Status run() {
    ProgressTracker* progress = currentProgress();
    if (progress != nullptr) progress->planFiles(objects_.size());
    auto worker = [this, progress] {
      // The workers feed the caller's tracker: the bytes are written on their threads.
      ScopedProgress scope(progress);
      for (size_t i = next_++; i < parts_.size() && !failed_.load(); i = next_++) {
        Status status = fetch(parts_[i], progress);
        if (!status.ok) {
          std::lock_guard lock(mutex_);
          if (!failed_.exchange(true)) first_ = std::move(status);
        }
      }
    };
    const size_t threads = std::min(parts_.size(), kFileConcurrency);
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t)
      pool.emplace_back(worker);
    worker();
    for (auto& thread : pool)
      thread.join();
    return first_;
  }

 private:
  Status fetch(const Part& part, ProgressTracker* progress) {
    const SelectedObject& object = objects_[part.object];
    OpenFile& file = files_[part.object];
    {
      std::lock_guard lock(file.mutex);
      if (!file.started) {
        file.started = true;
        file.opened = openFile(destination_, object, part.ranged, file);
      }
      if (!file.opened.ok) return file.opened;
    }
    Status status =
        transfer(part, object, {file.fd, file.path.string(), part.range.first, part.ranged});
    if (!status.ok) return status;
    std::lock_guard lock(file.mutex);
    if (--file.partsLeft > 0) return Status::success();
    const int fd = std::exchange(file.fd, -1);
    if (::close(fd) != 0) {
      return Status::failure("cannot write " + file.path.string() + ": " + std::strerror(errno));
    }
    if (progress != nullptr) progress->fileDone();
    return Status::success();
  }

  // Sends the part's GET until its bytes are all written, a failure is final, or the attempts
  // are spent. A body shorter than asked (a connection a gateway cut) counts as a failure.
  Status transfer(const Part& part, const SelectedObject& object, const FilePart& target) {
    const core::Backoff backoff{std::chrono::milliseconds(500), std::chrono::seconds(20)};
    const uint64_t expected = part.ranged ? part.range.last - part.range.first + 1 : object.size;
    const std::string what = part.ranged
                                 ? object.key + " (bytes " + std::to_string(part.range.first) +
                                       "-" + std::to_string(part.range.last) + ")"
                                 : object.key;
    for (int attempt = 1;; ++attempt) {
      HttpRequest request;
      Status made = source_.request(object, part.ranged ? &part.range : nullptr, request);
      if (!made.ok) return made;
      HttpResponse response = httpFetchToPart(request, target);
      Status status;
      bool retry = false;
      if (!response.ok()) {
        status = Status::failure("failed to download " + what + ": " +
                                 source_.failure(request, response));
        retry = source_.retryable ? source_.retryable(response) : retryableAnswer(response);
      } else if (response.bytes != expected) {
        status = part.ranged ? Status::failure("object \"" + object.key + "\": asked for " +
                                               std::to_string(expected) + " bytes from " +
                                               std::to_string(part.range.first) + ", received " +
                                               std::to_string(response.bytes))
                             : checkSize(object, response.bytes);
        retry = true;
      }
      if (status.ok || !retry || attempt >= source_.attempts) return status;
      spdlog::warn("storage: {}; retrying ({} of {})", status.message, attempt + 1,
                   source_.attempts);
      if (!sleepUnlessCancelled(backoff.delay(attempt), cancel_)) return status;
    }
  }

  const std::vector<SelectedObject>& objects_;
  const fs::path& destination_;
  const ObjectSource& source_;
  const std::atomic<bool>* cancel_;
  std::vector<OpenFile> files_;
  std::vector<Part> parts_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  Status first_;
};

}  // namespace

Status fetchObjects(const std::vector<SelectedObject>& objects, const fs::path& destination,
                    const ObjectSource& source, const std::atomic<bool>* cancel) {
  return Fetcher(objects, destination, source, cancel).run();
}

}  // namespace storage
