#include "tests/support/loop.h"

#include <uv.h>

#include <atomic>
#include <thread>

namespace testsupport {

TestLoop::TestLoop() : loop_(std::make_unique<uv_loop_s>()) {
  uv_loop_init(loop_.get());
}

TestLoop::~TestLoop() {
  if (!closed_) close();
}

bool TestLoop::runUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  struct Check {
    uv_timer_t timer{};
    std::function<bool()> done;
    std::chrono::steady_clock::time_point deadline;
  };
  auto* check = new Check{{}, done, std::chrono::steady_clock::now() + timeout};
  uv_timer_init(loop_.get(), &check->timer);
  check->timer.data = check;
  uv_timer_start(
      &check->timer,
      [](uv_timer_t* timer) {
        auto* c = static_cast<Check*>(timer->data);
        if (c->done() || std::chrono::steady_clock::now() >= c->deadline) uv_stop(timer->loop);
      },
      0, 5);
  uv_run(loop_.get(), UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&check->timer),
           [](uv_handle_t* handle) { delete static_cast<Check*>(handle->data); });
  uv_run(loop_.get(), UV_RUN_NOWAIT);
  return done();
}

void TestLoop::runFor(std::chrono::milliseconds duration) {
  runUntil([] { return false; }, duration);
}

bool TestLoop::runAlongside(const std::function<void()>& work, std::chrono::milliseconds timeout) {
  std::atomic<bool> returned{false};
  std::thread thread([&] {
    work();
    returned = true;
  });
  bool inTime = runUntil([&] { return returned.load(); }, timeout);
  thread.join();
  return inTime;
}

bool TestLoop::close() {
  closed_ = true;
  for (int i = 0; i < 10; ++i)
    uv_run(loop_.get(), UV_RUN_NOWAIT);
  return uv_loop_close(loop_.get()) == 0;
}

}  // namespace testsupport
