// Runs independent transfers (the files of one model) on a few threads.
#pragma once

#include <cstddef>
#include <functional>

#include "puller/storage/storage.h"

namespace storage {

// Calls work(i) for i in [0, count) on up to `concurrency` threads, the calling thread one of
// them. The first failure stops the remaining items from starting and is returned. The calling
// thread's progress tracker (progress.h) is current on the workers.
Status runEach(size_t count, size_t concurrency, const std::function<Status(size_t)>& work);

// runEach for items that are files: the tracker counts them as planned files, and each success
// as a file done.
Status runParallel(size_t count, size_t concurrency, const std::function<Status(size_t)>& work);

// Files per model downloaded at once (S3_MAX_FILE_CONCURRENCY in the Python initializer). Eight,
// as many connections as the raw-curl limit of tests/bench's storage section keeps in flight:
// with four, a third of what one S3 endpoint served curl went unused; each costs a few buffers.
inline constexpr size_t kFileConcurrency = 8;

}  // namespace storage
