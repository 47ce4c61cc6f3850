// Where a blob sink writes: the bucket and prefix of --log-url and the object key of each batch
// (spec/upstream-logger.md §5.1, §5.3), with keys a client cannot aim at another object.
//
// Upstream's key is path.Join(prefix, namespace, inferenceService, component, storePath) +
// "/<id>-<suffix>.<ext>", the id and suffix from the batch's first record. Ours differs in two
// ways, both documented in logger/README.md:
//   - The id goes into the key as upstream writes it only when the agent made it (a UUIDv4).
//     An id the client sent (Ce-Id) is %-encoded (every byte but A-Z a-z 0-9 . _ ~ -, so no '/'
//     and no ".." segment), cut to 200 bytes, and followed by a token unique to this process and
//     batch: "<id>-<16 hex>-<n>-<suffix>.<ext>". Two batches can never share a key, whatever
//     ids clients send, across replicas too (the 16 hex digits are random per process).
//   - The directory never starts with '/' (upstream's began with one when the URL had no path
//     and namespace, inference service and component were empty) and may not climb above the
//     bucket with "..".
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace logger::blob {

enum class Provider { S3, Gcs, Azure };

struct BlobLocation {
  Provider provider = Provider::S3;
  std::string bucket;   // S3 or GCS bucket, Azure container
  std::string account;  // abfs://container@<account>/...: the URL's host; "" for s3 and gs
  std::string prefix;   // the URL's path without its leading '/'
};

// Upstream's test for a blob sink: the URL starts with "s3", "gs" or "abfs" (so "s3a://..." is
// one, and is then refused by parseBlobUrl, as upstream refuses it at start).
bool looksLikeBlobUrl(std::string_view url);

// Parses a blob --log-url: the scheme exactly s3://, gs:// or abfs://; the bucket is the host, or
// the user name when there is one (abfs://container@account/path); the prefix is the path
// without its leading '/'. Errors: "unsupported blob URL scheme ...", "no bucket specified in
// url", an invalid bucket name (anything but A-Z a-z 0-9 . _ -), or a URL Go cannot parse.
bool parseBlobUrl(std::string_view url, BlobLocation& out, std::string& error);

// Go's path.Clean and path.Join (empty elements are skipped; all empty gives "").
std::string goPathClean(std::string_view path);
std::string goPathJoin(std::initializer_list<std::string_view> elements);

// The directory of every object: path.Join(prefix, namespace, inferenceService, component,
// storePath) without a leading '/'. Fails when it climbs above the bucket ("..") or is longer
// than 512 bytes (keys are limited to 1024).
bool objectDirectory(std::string_view prefix, std::string_view nameSpace,
                     std::string_view inferenceService, std::string_view component,
                     std::string_view storePath, std::string& directory, std::string& error);

// Makes object keys in one directory. Safe to use from several threads.
class ObjectKeys {
 public:
  enum class IdOrigin { Generated, Client };

  // `processToken` makes this process's keys differ from another's (see randomToken()).
  ObjectKeys(std::string directory, uint64_t processToken);

  // 64 random bits from the system's generator.
  static uint64_t randomToken();

  // The key of a batch whose first record has `id` and CloudEvents type `reqType` (its suffix is
  // the text after the last '.'), for an object with `extension`. Keys of Client ids (and of
  // Generated ones that are not plain A-Z a-z 0-9 . _ ~ - text) get the unique token.
  std::string key(std::string_view id, IdOrigin origin, std::string_view reqType,
                  std::string_view extension);

 private:
  std::string directory_;
  std::string token_;
  std::atomic<uint64_t> sequence_{0};
};

}  // namespace logger::blob
