// A one-shot libuv timer owned by one object. The uv_timer_t lives on the heap and is freed in
// its close callback, so the owner may be destroyed at any time, also from inside `fire`.
#pragma once

#include <chrono>
#include <functional>

struct uv_loop_s;

namespace core {

class Timer {
 public:
  explicit Timer(uv_loop_s* loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // (Re)arms the timer: `fire` runs once on the loop after `delay`.
  void start(std::chrono::milliseconds delay, std::function<void()> fire);
  void stop();

 private:
  struct State;
  State* state_;
};

}  // namespace core
