// A libuv handle owned by an object. The handle lives on the heap: it is closed when its owner
// goes (or on close()) and freed in its close callback, as libuv requires, so the owner may be
// destroyed at any time, also from inside the handle's own callback.
#pragma once

#include <uv.h>

#include <utility>

namespace core {

template <typename Handle>
class OwnedHandle {
 public:
  // Makes the handle with `init(handle)` (uv_async_init, uv_signal_init, ...); `data` is set
  // for its callbacks. Nothing is made when init fails (ok() is false then).
  template <typename Init>
  OwnedHandle(Init&& init, void* data) : handle_(new Handle{}) {
    handle_->data = data;
    if (std::forward<Init>(init)(handle_) != 0) {
      delete handle_;
      handle_ = nullptr;
    }
  }
  ~OwnedHandle() { close(); }
  OwnedHandle(const OwnedHandle&) = delete;
  OwnedHandle& operator=(const OwnedHandle&) = delete;

  bool ok() const { return handle_ != nullptr; }
  Handle* get() const { return handle_; }
  uv_handle_t* base() const { return reinterpret_cast<uv_handle_t*>(handle_); }

  // Closes the handle now; its memory goes in the close callback. Idempotent.
  void close() {
    if (handle_ == nullptr) return;
    uv_close(base(), [](uv_handle_t* handle) { delete reinterpret_cast<Handle*>(handle); });
    handle_ = nullptr;
  }

 private:
  Handle* handle_;
};

}  // namespace core
