#include "puller/storage/parallel.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace storage {

Status runParallel(size_t count, size_t concurrency, const std::function<Status(size_t)>& work) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;
  Status first;
  auto worker = [&] {
    for (size_t i = next++; i < count && !failed.load(); i = next++) {
      Status status = work(i);
      if (!status.ok) {
        std::lock_guard lock(mutex);
        if (!failed.exchange(true)) first = std::move(status);
      }
    }
  };
  size_t threads = std::min(count, std::max<size_t>(concurrency, 1));
  if (threads <= 1) {
    worker();
    return first;
  }
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (size_t t = 1; t < threads; ++t)
    pool.emplace_back(worker);
  worker();
  for (auto& thread : pool)
    thread.join();
  return first;
}

}  // namespace storage
