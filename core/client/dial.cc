#include "core/client/dial.h"

#include <memory>

#include "core/uv/handle.h"
#include "core/uv/timer.h"

namespace core {

namespace {

// Owns its socket and timer; frees itself once the outcome is known.
class Dial {
 public:
  Dial(uv_loop_t* loop, std::chrono::milliseconds timeout, std::function<void(bool)> done)
      : done_(std::move(done)),
        timer_(loop),
        socket_([loop](uv_tcp_t* handle) { return uv_tcp_init(loop, handle); }, this) {
    timer_.start(timeout, [this] { finish(false); });
  }

  void start(const sockaddr_storage& address) {
    // The request outlives the dial when the dial ends first: closing the socket then calls it
    // back with UV_ECANCELED, which frees it and touches nothing else.
    auto* request = new uv_connect_t;
    request->data = this;
    int rc = socket_.ok() ? uv_tcp_connect(request, socket_.get(),
                                           reinterpret_cast<const sockaddr*>(&address),
                                           [](uv_connect_t* done, int status) {
                                             std::unique_ptr<uv_connect_t> owned(done);
                                             if (status == UV_ECANCELED) return;
                                             static_cast<Dial*>(done->data)->finish(status == 0);
                                           })
                          : -1;
    if (rc != 0) {
      delete request;
      // The outcome comes from the timer, never from inside dialOnce.
      timer_.start(std::chrono::milliseconds(0), [this] { finish(false); });
    }
  }

 private:
  void finish(bool connected) {
    auto done = std::move(done_);
    // Closing the socket cancels a connect still running (its callback sees UV_ECANCELED and
    // touches nothing); the handles go in their close callbacks.
    delete this;
    done(connected);
  }

  std::function<void(bool)> done_;
  Timer timer_;
  OwnedHandle<uv_tcp_t> socket_;
};

}  // namespace

void dialOnce(uv_loop_t* loop, const sockaddr_storage& address, std::chrono::milliseconds timeout,
              std::function<void(bool)> done) {
  (new Dial(loop, timeout, std::move(done)))->start(address);
}

}  // namespace core
