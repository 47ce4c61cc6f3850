#include "puller/storage/fetch.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>

#include "core/util/backoff.h"

#include "puller/storage/parallel.h"
#include "puller/storage/progress.h"
#include "puller/storage/util.h"

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
  std::set<uint64_t> done;  // offsets of the ranged parts in place (journal())

  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
};

// The journal of a ranged download, next to its file: the parts in place, for which content of
// the object. A download that failed or was killed goes on from there when run again into the
// same folder (an init container restarted on its emptyDir); removed once the file is whole.
constexpr const char* kJournalSuffix = ".kserve-parts";

fs::path journalPath(const fs::path& file) {
  return file.string() + kJournalSuffix;
}

nlohmann::json journalIdentity(const SelectedObject& object) {
  return {{"key", object.key},
          {"version", object.version},
          {"size", object.size},
          {"partSize", kPartSize}};
}

// The parts a journal says are in place, when it is about this very content and the file is
// still there at its size; none otherwise.
std::set<uint64_t> readJournal(const fs::path& file, const SelectedObject& object) {
  std::error_code ec;
  if (object.version.empty() || fs::file_size(file, ec) != object.size || ec) return {};
  std::ifstream in(journalPath(file));
  const nlohmann::json journal = nlohmann::json::parse(in, nullptr, false);
  if (!journal.is_object() ||
      journal.value("identity", nlohmann::json()) != journalIdentity(object) ||
      !journal.contains("done") || !journal["done"].is_array()) {
    return {};
  }
  std::set<uint64_t> done;
  for (const auto& offset : journal["done"]) {
    if (!offset.is_number_unsigned()) return {};
    const uint64_t first = offset.get<uint64_t>();
    if (first % kPartSize != 0 || first >= object.size) return {};
    done.insert(first);
  }
  return done;
}

// Replaces the journal in one rename, so a crash leaves the old one or the new one. Best
// effort: without a journal a later run fetches the whole file again.
void writeJournal(const fs::path& file, const SelectedObject& object,
                  const std::set<uint64_t>& done) {
  const nlohmann::json journal{{"identity", journalIdentity(object)}, {"done", done}};
  const fs::path path = journalPath(file);
  const fs::path temporary = path.string() + ".new";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << journal.dump();
    if (!out) return;
  }
  std::error_code ec;
  fs::rename(temporary, path, ec);
}

// Creates (or truncates, unless it holds bytes to keep) the object's file; a ranged object's
// file gets its listed size up front, so the parts can land anywhere in it and a full disk fails
// now rather than near the end.
Status openFile(const fs::path& destination, const SelectedObject& object, bool preallocate,
                OpenFile& file) {
  Status prepared = prepareFile(destination, object.relative, file.path);
  if (!prepared.ok) return prepared;
  const int truncate = object.present > 0 || !file.done.empty() ? 0 : O_TRUNC;
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
    // A model with a file of a journal's name keeps no journals: they would overwrite it.
    for (const auto& object : objects) {
      const std::string name = object.relative.filename().string();
      if (name.ends_with(kJournalSuffix) || name.ends_with(std::string(kJournalSuffix) + ".new")) {
        journals_ = false;
      }
    }
    for (size_t i = 0; i < objects.size(); ++i) {
      const uint64_t size = objects[i].size;
      if (size < kRangedThreshold && objects[i].present == 0) {
        parts_.push_back({i, {}, false});
        files_[i].partsLeft = 1;
        continue;
      }
      if (objects[i].present == 0 && journals_) {
        files_[i].done = readJournal(destination / objects[i].relative, objects[i]);
      }
      for (uint64_t first = objects[i].present; first < size; first += kPartSize) {
        if (files_[i].done.contains(first)) continue;
        parts_.push_back({i, {first, std::min(size, first + kPartSize) - 1}, true});
        ++files_[i].partsLeft;
      }
      if (!files_[i].done.empty()) {
        spdlog::info(
            "storage: {}: {} of {} bytes are in place from an earlier download; fetching "
            "the rest",
            objects[i].key, kept(i), size);
      }
    }
  }

  Status run() {
    ProgressTracker* progress = currentProgress();
    if (progress != nullptr) progress->planFiles(objects_.size());
    for (size_t i = 0; i < objects_.size(); ++i) {
      if (files_[i].done.empty()) continue;
      const std::string path = (destination_ / objects_[i].relative).string();
      // Counted under an offset no part starts at, so no part's count replaces it.
      if (progress != nullptr) {
        const auto bytes = kept(i);
        progress->addBytes(path, objects_[i].size, true, static_cast<int64_t>(bytes), bytes);
      }
      // Every part was in place: nothing to fetch, only the journal to remove.
      if (files_[i].partsLeft == 0) {
        std::error_code ec;
        fs::remove(journalPath(path), ec);
        if (progress != nullptr) progress->fileDone();
      }
    }
    return runEach(parts_.size(), source_.connections,
                   [&](size_t i) { return fetch(parts_[i], progress); });
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
    const std::string range = part.ranged ? "bytes " + std::to_string(part.range.first) + "-" +
                                                std::to_string(part.range.last)
                                          : "";
    Status status = transfer(part, object, {file.fd, file.path.string(), part.range.first, range});
    if (!status.ok) return status;
    std::lock_guard lock(file.mutex);
    if (--file.partsLeft > 0) {
      if (part.ranged && object.present == 0 && !object.version.empty() && journals_) {
        file.done.insert(part.range.first);
        writeJournal(file.path, object, file.done);
      }
      return Status::success();
    }
    const int fd = std::exchange(file.fd, -1);
    if (::close(fd) != 0) {
      return Status::failure("cannot write " + file.path.string() + ": " + std::strerror(errno));
    }
    if (journals_) {
      std::error_code ec;
      fs::remove(journalPath(file.path), ec);
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

  // The bytes of object `i` its journal says are in place.
  uint64_t kept(size_t i) const {
    uint64_t bytes = 0;
    for (uint64_t first : files_[i].done)
      bytes += std::min(objects_[i].size - first, kPartSize);
    return bytes;
  }

  const std::vector<SelectedObject>& objects_;
  const fs::path& destination_;
  const ObjectSource& source_;
  const std::atomic<bool>* cancel_;
  std::vector<OpenFile> files_;
  std::vector<Part> parts_;
  bool journals_ = true;
};

}  // namespace

size_t concurrencyFromEnv(const char* name, size_t fallback) {
  const std::string text = env(name);
  if (text.empty()) return fallback;
  size_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0) {
    spdlog::warn("storage: {}={} is not a positive integer; using {}", name, text, fallback);
    return fallback;
  }
  return std::min(value, kMaxConnections);
}

Status fetchObjects(const std::vector<SelectedObject>& objects, const fs::path& destination,
                    const ObjectSource& source, const std::atomic<bool>* cancel) {
  return Fetcher(objects, destination, source, cancel).run();
}

}  // namespace storage
