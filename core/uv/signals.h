// SIGTERM and SIGINT as both binaries take them: the first starts a graceful drain, a second
// one ends the process at once (status 1), as an operator pressing Ctrl-C twice expects.
#pragma once

#include <uv.h>

#include <functional>

#include "core/uv/handle.h"

namespace core {

class ShutdownSignals {
 public:
  // `onFirst(signum)` runs on `loop` for the first signal. The watchers do not keep the loop
  // running on their own.
  ShutdownSignals(uv_loop_t* loop, std::function<void(int)> onFirst);
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

 private:
  static int start(uv_loop_t* loop, uv_signal_t* handle, int signum);
  void onSignal(int signum);

  std::function<void(int)> onFirst_;
  bool signalled_ = false;
  OwnedHandle<uv_signal_t> term_;
  OwnedHandle<uv_signal_t> interrupt_;
};

}  // namespace core
