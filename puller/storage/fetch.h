// Fetches the objects a listing selected (S3, GCS, Azure Blob) into the destination on a bounded
// pool of connections shared by the whole model. An object of kRangedThreshold bytes or more is
// fetched as ranged GETs of kPartSize into a file preallocated to its listed size, each part
// written in place and retried on its own; smaller objects take one GET each. Memory stays at
// libcurl's buffers per connection whatever the sizes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "puller/storage/parallel.h"
#include "puller/storage/providers.h"

namespace storage {

// Objects from this size on are split into parts. Below it one GET costs less than several.
inline constexpr uint64_t kRangedThreshold = uint64_t{64} << 20;
// Large enough that a request's round trip is small against its transfer, small enough that the
// connections stay busy until an object's end and a retried part repeats little.
inline constexpr uint64_t kPartSize = uint64_t{32} << 20;

// An inclusive byte range, as the Range header writes it.
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;

  std::string header() const {
    return "bytes=" + std::to_string(first) + "-" + std::to_string(last);
  }
};

// What a provider supplies to fetch its objects.
struct ObjectSource {
  // Fills `request` for `object`, whole when `range` is null, else for that range (the provider
  // sends range->header() as its Range header, signed where its signature covers it). Called for
  // every attempt, so signatures and tokens are fresh.
  std::function<Status(const SelectedObject& object, const ByteRange* range, HttpRequest& request)>
      request;
  // The cause of a failed answer, for "failed to download <key>: <cause>".
  std::function<std::string(const HttpRequest&, const HttpResponse&)> failure;
  // Whether a failed answer is worth another attempt; unset: retryableAnswer (http_client.h).
  std::function<bool(const HttpResponse&)> retryable;
  int attempts = 3;                       // per part (or per whole object)
  size_t connections = kFileConcurrency;  // GETs in flight at once for the model
};

// Most connections a model's download may keep in flight, whatever a variable asks for.
inline constexpr size_t kMaxConnections = 64;

// A count from an upstream concurrency variable (S3_MAX_FILE_CONCURRENCY, ...): `fallback` when
// unset; a value that is not a positive integer is ignored with a warning; at most
// kMaxConnections.
size_t concurrencyFromEnv(const char* name, size_t fallback);

// Fetches `objects` below `destination` (each at its `relative` path; an object with bytes
// `present` is fetched as ranges from there on, whatever its size, into the file as it is). The
// first failure stops the transfers not yet started and is returned; a file whose size differs from
// the listing fails. The calling thread's progress tracker counts files and bytes (progress.h).
Status fetchObjects(const std::vector<SelectedObject>& objects, const fs::path& destination,
                    const ObjectSource& source, const std::atomic<bool>* cancel);

}  // namespace storage
