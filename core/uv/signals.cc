#include "core/uv/signals.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace core {

ShutdownSignals::ShutdownSignals(uv_loop_t* loop, std::function<void(int)> onFirst)
    : onFirst_(std::move(onFirst)),
      term_([&](uv_signal_t* h) { return start(loop, h, SIGTERM); }, this),
      interrupt_([&](uv_signal_t* h) { return start(loop, h, SIGINT); }, this) {}

int ShutdownSignals::start(uv_loop_t* loop, uv_signal_t* handle, int signum) {
  int rc = uv_signal_init(loop, handle);
  if (rc != 0) return rc;
  uv_signal_start(
      handle,
      [](uv_signal_t* h, int sig) { static_cast<ShutdownSignals*>(h->data)->onSignal(sig); },
      signum);
  // The watchers alone do not keep the loop running once it has drained.
  uv_unref(reinterpret_cast<uv_handle_t*>(handle));
  return 0;
}

void ShutdownSignals::onSignal(int signum) {
  if (signalled_) {
    spdlog::warn("second signal {}: exiting now", signum);
    std::_Exit(1);
  }
  signalled_ = true;
  onFirst_(signum);
}

}  // namespace core
