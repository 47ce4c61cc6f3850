// An event loop owned by an object: initialised with it, and at its end every handle still open
// is closed, their close callbacks run, and the loop closed. Declared before everything that owns
// handles on it, so it is destroyed after them.
#pragma once

#include <uv.h>

namespace core {

class OwnedLoop {
 public:
  OwnedLoop() { uv_loop_init(&loop_); }
  ~OwnedLoop() {
    uv_walk(
        &loop_,
        [](uv_handle_t* handle, void*) {
          if (!uv_is_closing(handle)) uv_close(handle, nullptr);
        },
        nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  OwnedLoop(const OwnedLoop&) = delete;
  OwnedLoop& operator=(const OwnedLoop&) = delete;
  uv_loop_t* get() { return &loop_; }

 private:
  uv_loop_t loop_;
};

}  // namespace core
