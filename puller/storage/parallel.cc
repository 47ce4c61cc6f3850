#include "puller/storage/parallel.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "puller/storage/progress.h"

namespace storage {

Status runEach(size_t count, size_t concurrency, const std::function<Status(size_t)>& work) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  Status first;
  ProgressTracker* progress = currentProgress();
  auto worker = [&] {
    // The workers feed the caller's tracker: its bytes are written on their threads.
    ScopedProgress scope(progress);
    for (size_t i = next++; i < count && !failed.load(); i = next++) {
      Status status = work(i);
      if (!status.ok) {
        std::lock_guard lock(mutex);
        if (!failed.exchange(true)) first = std::move(status);
      }
    }
  };
  size_t threads = std::min(count, std::max<size_t>(concurrency, 1));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t)
    pool.emplace_back(worker);
  worker();
  for (auto& thread : pool)
    thread.join();
  return first;
}

Status runParallel(size_t count, size_t concurrency, const std::function<Status(size_t)>& work) {
  ProgressTracker* progress = currentProgress();
  if (progress != nullptr) progress->planFiles(count);
  return runEach(count, concurrency, [&](size_t i) {
    Status status = work(i);
    if (status.ok && progress != nullptr) progress->fileDone();
    return status;
  });
}

}  // namespace storage
