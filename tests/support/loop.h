// The event loop every unit test that runs one uses: run until a condition holds (bounded), run
// for a while, and close, checking that nothing was left open (libuv's test discipline).
#pragma once

#include <chrono>
#include <functional>
#include <memory>

struct uv_loop_s;

namespace testsupport {

class TestLoop {
 public:
  TestLoop();
  // Closes the loop if the test did not (a leak then shows in the sanitizers, not here).
  ~TestLoop();
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;
  uv_loop_s* get() { return loop_.get(); }
  // Runs the loop until `done()` holds or the timeout passes; returns done().
  bool runUntil(const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Runs the loop for a while.
  void runFor(std::chrono::milliseconds duration);
  // Runs `work` on a thread of its own while the loop runs, until it returns or the timeout
  // passes; true when it returned in time. For blocking clients of a server on this loop. The
  // thread is always joined (so `work` must bound its own waits), and `work` must not use
  // Catch's assertions, which are not thread-safe: it leaves its results for the test to check.
  bool runAlongside(const std::function<void()>& work,
                    std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Runs pending close callbacks and closes the loop; true when nothing was left open.
  bool close();

 private:
  std::unique_ptr<uv_loop_s> loop_;
  bool closed_ = false;
};

}  // namespace testsupport
