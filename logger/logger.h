// The payload logger (--log-url): one CloudEvent per logged request and per logged response,
// delivered off the request path. The module only observes; requests and responses stream
// through untouched.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/chain/filter.h"

namespace prometheus {
class Registry;
}

namespace logger {

class BlobUploads;

// The logger's settings (the agent maps its flags onto them).
struct Options {
  // As upstream's flags.
  std::string logUrl;
  int workers = 5;
  std::string sourceUri;  // "": http://localhost:<listenPort>/
  std::string logMode = "all";
  std::string inferenceService;
  std::string namespace_;
  std::string endpoint;
  std::string component;
  std::vector<std::string> metadataHeaders;
  std::vector<std::string> metadataAnnotations;  // "key=value" items
  std::string loggerCaCertFile = "service-ca.crt";
  std::string loggerCaCertDir = "/etc/tls/logger";
  bool loggerTlsSkipVerify = false;
  // Blob sinks (s3://, gs://, abfs:// --log-url), as upstream's flags.
  std::string logStorePath;
  std::string logStoreFormat = "json";
  std::string logMarshallerUrl = "http://localhost:9083/marshal";
  int logMarshallerPort = 9083;
  int logBatchSize = 1;
  std::chrono::milliseconds logBatchInterval{0};
  // Ours.
  bool logAllResponses = false;
  size_t logQueueEvents = 10000;
  size_t logQueueBytes = size_t{64} << 20;
  std::chrono::milliseconds logTimeout{std::chrono::seconds(10)};
  int logRetries = 5;                       // delivery attempts per event, the first included
  uint16_t listenPort = 9081;               // the agent's port, for the default source
  prometheus::Registry* metrics = nullptr;  // where the logger's metrics go; null: none
  // Blob sinks: the process's one upload thread, which every loop's logger hands its batches
  // to (made by the agent, which knows the storage library; see blob_sink.h).
  std::shared_ptr<BlobUploads> blobUploads;
};

// The logger module for one loop; nullptr when options.logUrl is empty (the logger is off).
std::unique_ptr<core::Filter> makeLogger(const core::FilterContext& context,
                                         const Options& options);

}  // namespace logger
