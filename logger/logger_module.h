// The logger module itself, exposed for the unit tests; the agent creates it with makeLogger.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/chain/filter.h"
#include "core/util/capture.h"
#include "core/util/recycle.h"
#include "core/uv/timer.h"
#include "logger/blob_sink.h"
#include "logger/cloudevent.h"
#include "logger/dispatcher.h"
#include "logger/logger.h"

namespace logger {

class LoggerModule : public core::Filter {
 public:
  LoggerModule(const core::FilterContext& context, const Options& options);

  unsigned observes() const override;
  core::Action onRequestHeaders(const core::ExchangePtr& exchange) override;
  void onRequestData(core::Exchange& exchange, std::string_view chunk) override;
  void onResponseHeaders(core::Exchange& exchange) override;
  void onResponseData(core::Exchange& exchange, std::string_view chunk) override;
  void onComplete(core::Exchange& exchange, bool complete) override;
  // Waits for the exchanges in flight to complete, then for their events to be delivered.
  void drain(std::chrono::steady_clock::time_point deadline, std::function<void()> done) override;

  DispatcherStats stats() const { return dispatcher_.stats(); }
  // The blob sink's figures; null for http(s) sinks.
  const BlobSinkCounters* blobCounters() const { return blob_ ? &blob_->counters() : nullptr; }
  // Exchanges whose bodies are being captured.
  size_t openCaptures() const { return openCaptures_; }

 private:
  // One body being copied, within its share of the byte budget.
  struct Body {
    std::string data;  // a small body, or the start of one that grows large
    std::shared_ptr<core::CaptureBuffer> large;  // a body of more than kLargeBody bytes
    ByteLease lease;
    std::optional<DropReason> overflow;  // why the body cannot be logged
    size_t size() const { return large ? large->size() : data.size(); }
  };
  // What is kept of one exchange until it completes, in the exchange's state slot.
  struct Capture final : core::ExchangeState {
    // One per logged exchange: the block is recycled like the exchange's own.
    static void* operator new(size_t size) { return core::recycledBlock(size); }
    static void operator delete(void* block, size_t size) { core::recycleBlock(block, size); }

    Record record;          // the request event's; the response event starts from it
    bool clientId = false;  // record.id is the request's Ce-Id (blob object keys differ)
    Body request;
    bool captureResponse = false;
    Body response;
  };
  Capture* captureOf(core::Exchange& exchange) const;

  void expect(Body& body, const core::Headers& headers);
  void append(Body& body, std::string_view chunk);
  void emit(Record&& record, Body&& body, bool clientId);
  void startDispatcherDrain();

  size_t slot_;
  bool logRequests_;
  bool logResponses_;
  bool logAllResponses_;
  std::vector<std::string> metadataHeaders_;
  size_t maxBodyBytes_;
  Dispatcher dispatcher_;
  std::unique_ptr<BlobSink> blob_;  // blob sinks (s3://, gs://, abfs://); null for http(s)
  size_t openCaptures_ = 0;
  core::Timer drainTimer_;
  std::optional<std::chrono::steady_clock::time_point> drainDeadline_;
  std::function<void()> drainDone_;
};

}  // namespace logger
