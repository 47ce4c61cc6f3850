#include "core_curl/https_transport.h"

namespace core_curl {

using core::Origin;
using core::Timer;
using core::UpstreamCall;
using core::UpstreamDone;
using core::UpstreamRequest;
using core::UpstreamResult;

// One call: a curl transfer, or (when curl refused to set one up) an error delivered on the next
// loop turn.
class CurlHttpsTransport::Call final : public UpstreamCall {
 public:
  Call(CurlHttpsTransport& transport, UpstreamDone done)
      : transport_(transport), done_(std::move(done)), failLater_(transport.loop_) {}

  void start(CurlRequest request) {
    transfer_ = transport_.client_.send(std::move(request),
                                        [this](CurlResult result) { complete(std::move(result)); });
    if (transfer_ == 0) {
      failLater_.start(std::chrono::milliseconds(0), [this] {
        CurlResult result;
        result.error = "the https request could not be set up";
        complete(std::move(result));
      });
    }
  }
  void cancel() override {
    if (transfer_ != 0) transport_.client_.cancel(transfer_);
    transport_.finished(this);
  }
  void abort(const std::string& reason) {
    if (transfer_ != 0) transport_.client_.cancel(transfer_);
    CurlResult result;
    result.error = reason;
    complete(std::move(result));
  }

 private:
  void complete(CurlResult curl) {
    UpstreamResult result;
    result.status = static_cast<int>(curl.status);
    result.headers = std::move(curl.headers);
    result.body = std::move(curl.body);
    result.error = std::move(curl.error);
    result.timedOut = curl.timedOut;
    UpstreamDone done = std::move(done_);
    transport_.finished(this);  // destroys this call
    if (done) done(std::move(result));
  }

  CurlHttpsTransport& transport_;
  UpstreamDone done_;
  Timer failLater_;
  uint64_t transfer_ = 0;
};

CurlHttpsTransport::CurlHttpsTransport(uv_loop_t* loop, CurlClient::Options options,
                                       std::shared_ptr<const std::string> caBundle,
                                       std::chrono::milliseconds connectTimeout)
    : loop_(loop),
      caBundle_(std::move(caBundle)),
      connectTimeout_(connectTimeout),
      client_(loop, std::move(options)) {}

// The client's transfers end without callbacks when it goes; the calls need nothing more.
CurlHttpsTransport::~CurlHttpsTransport() = default;

UpstreamCall* CurlHttpsTransport::send(const Origin& origin, UpstreamRequest upstream,
                                       UpstreamDone done) {
  CurlRequest request;
  request.method = std::move(upstream.method);
  request.url = origin.describe() + upstream.target;
  request.headers = std::move(upstream.headers);
  request.body = std::make_shared<const std::string>(std::move(upstream.body));
  request.timeout = upstream.timeout;
  request.maxResponseBytes = upstream.maxResponseBytes;
  request.failOnLargeBody = upstream.maxResponseBytes != 0;
  request.caBundle = caBundle_;
  request.connectTimeout = connectTimeout_;
  auto call = std::make_unique<Call>(*this, std::move(done));
  Call* raw = call.get();
  calls_.emplace(raw, std::move(call));
  raw->start(std::move(request));
  return raw;
}

void CurlHttpsTransport::cancelCalls(const std::string& reason) {
  std::vector<Call*> calls;
  for (auto& [raw, call] : calls_)
    calls.push_back(raw);
  for (Call* call : calls)
    call->abort(reason);
}

void CurlHttpsTransport::finished(Call* call) {
  calls_.erase(call);
}

}  // namespace core_curl
