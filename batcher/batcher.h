// The batcher module (--enable-batcher): holds prediction requests for a short while and sends
// them to the model server as one merged call, then answers each caller with its own part.
//
// Protocol v1 keeps upstream's wire contract (paths ending in ":predict", {"instances":[...]},
// replies {"message","batchId","predictions"}); Open Inference Protocol v2 requests
// (POST /v2/models/<m>/infer) are merged along the first dimension when they agree in shape.
// One queue per target path (and, for v2, per input signature); a batch flushes when it holds
// maxBatchSize instances or maxLatencyMs after its first request; several merged calls may be in
// flight at once, and every caller is answered whatever the model does.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include "core/chain/filter.h"

namespace prometheus {
class Registry;
}

namespace batcher {

struct Options {
  int maxBatchSize = 32;
  int maxLatencyMs = 5000;
  std::chrono::milliseconds timeout{60000};  // merged model call timeout
  size_t maxBodyBytes = 64u << 20;           // 413 above this
  prometheus::Registry* metrics = nullptr;   // where the batcher's metrics go; null: none
};

std::unique_ptr<core::Filter> makeBatcher(const core::FilterContext& context,
                                          const Options& options);

}  // namespace batcher
