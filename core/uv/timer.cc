#include "core/uv/timer.h"

#include <uv.h>

namespace core {

struct Timer::State {
  uv_timer_t handle{};
  std::function<void()> fire;
};

Timer::Timer(uv_loop_s* loop) : state_(new State) {
  uv_timer_init(loop, &state_->handle);
  state_->handle.data = state_;
}

Timer::~Timer() {
  uv_close(reinterpret_cast<uv_handle_t*>(&state_->handle),
           [](uv_handle_t* handle) { delete static_cast<State*>(handle->data); });
}

void Timer::start(std::chrono::milliseconds delay, std::function<void()> fire) {
  state_->fire = std::move(fire);
  auto timeout = delay.count() > 0 ? static_cast<uint64_t>(delay.count()) : 0;
  uv_timer_start(
      &state_->handle,
      [](uv_timer_t* handle) {
        // Move the callback out first: it may re-arm this timer or destroy its owner.
        auto callback = std::move(static_cast<State*>(handle->data)->fire);
        if (callback) callback();
      },
      timeout, 0);
}

void Timer::stop() {
  uv_timer_stop(&state_->handle);
  state_->fire = nullptr;
}

}  // namespace core
