#include "core/client/client.h"

#include "core/uv/timer.h"

namespace core {

// A call that cannot be made (https without a transport): its callback runs on the next loop
// turn with the error, as a call's callback never runs from inside send.
class Client::FailedCall final : public UpstreamCall {
 public:
  FailedCall(uv_loop_t* loop, std::string error, UpstreamDone done)
      : timer_(loop), error_(std::move(error)), done_(std::move(done)) {}

  void start() {
    timer_.start(std::chrono::milliseconds(0), [this] {
      UpstreamDone done = std::move(done_);
      UpstreamResult result;
      result.error = std::move(error_);
      delete this;
      done(std::move(result));
    });
  }
  void cancel() override { delete this; }

 private:
  ~FailedCall() = default;

  Timer timer_;
  std::string error_;
  UpstreamDone done_;
};

Client::Client(uv_loop_t* loop, UpstreamOptions poolOptions, HttpsTransport* https)
    : loop_(loop), poolOptions_(std::move(poolOptions)), https_(https), resolver_(loop) {}

Client::~Client() = default;

UpstreamPool& Client::pool(const Origin& origin) {
  std::string key = origin.describe();
  auto it = pools_.find(key);
  if (it == pools_.end()) {
    it = pools_
             .emplace(std::move(key),
                      std::make_unique<UpstreamPool>(loop_, origin, poolOptions_, resolver_))
             .first;
  }
  return *it->second;
}

UpstreamCall* Client::send(const Origin& origin, UpstreamRequest request, UpstreamDone done) {
  if (!origin.https) return pool(origin).send(std::move(request), std::move(done));
  if (https_ != nullptr) return https_->send(origin, std::move(request), std::move(done));
  auto* call =
      new FailedCall(loop_, "https is not available for " + origin.describe(), std::move(done));
  call->start();
  return call;
}

void Client::cancelCalls(const std::string& reason) {
  for (auto& [key, pool] : pools_)
    pool->cancelCalls(reason);
  if (https_ != nullptr) https_->cancelCalls(reason);
}

void Client::closeIdle() {
  for (auto& [key, pool] : pools_)
    pool->closeIdle();
}

}  // namespace core
