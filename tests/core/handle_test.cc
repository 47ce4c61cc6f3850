// Handle ownership (core::OwnedHandle) and the owned loop (core::OwnedLoop): closed with their
// owner, freed in the close callback (ASan reports a leak or a use after free otherwise), safe
// to destroy from inside the handle's own callback.
#include "core/uv/handle.h"

#include <catch2/catch.hpp>

#include <memory>

#include "core/uv/loop.h"
#include "tests/support/loop.h"

using namespace std::chrono_literals;
using core::OwnedHandle;
using testsupport::TestLoop;

namespace {

auto timerInit(uv_loop_t* loop) {
  return [loop](uv_timer_t* handle) { return uv_timer_init(loop, handle); };
}

}  // namespace

TEST_CASE("an owned handle is closed with its owner and freed in the close callback",
          "[core][handle]") {
  TestLoop loop;
  uv_timer_t* raw = nullptr;
  {
    OwnedHandle<uv_timer_t> timer(timerInit(loop.get()), nullptr);
    REQUIRE(timer.ok());
    raw = timer.get();
    CHECK(timer.base() == reinterpret_cast<uv_handle_t*>(raw));
    uv_timer_start(
        raw, [](uv_timer_t*) {}, 10'000, 0);
  }
  // The owner is gone but the handle is still allocated, closing: libuv frees nothing before
  // the close callback (reading it now would be a use after free under ASan otherwise).
  CHECK(uv_is_closing(reinterpret_cast<uv_handle_t*>(raw)) != 0);
  CHECK(uv_is_active(reinterpret_cast<uv_handle_t*>(raw)) == 0);
  // The running timer no longer holds the loop.
  CHECK(loop.close());
}

TEST_CASE("close() closes at once, is idempotent, and leaves the owner empty", "[core][handle]") {
  TestLoop loop;
  int marker = 0;
  OwnedHandle<uv_async_t> async(
      [&](uv_async_t* handle) { return uv_async_init(loop.get(), handle, nullptr); }, &marker);
  REQUIRE(async.ok());
  CHECK(async.get()->data == &marker);
  async.close();
  CHECK_FALSE(async.ok());
  CHECK(async.get() == nullptr);
  async.close();
  CHECK(loop.close());
}

TEST_CASE("a handle's callback gets the data it was made with", "[core][handle]") {
  TestLoop loop;
  int fired = 0;
  OwnedHandle<uv_timer_t> timer(timerInit(loop.get()), &fired);
  uv_timer_start(
      timer.get(), [](uv_timer_t* handle) { ++*static_cast<int*>(handle->data); }, 1, 0);
  CHECK(loop.runUntil([&] { return fired == 1; }, 5s));
  timer.close();
  CHECK(loop.close());
}

TEST_CASE("the owner may be destroyed inside the handle's own callback", "[core][handle]") {
  struct Owner {
    std::unique_ptr<OwnedHandle<uv_async_t>> async;
    int calls = 0;
  };
  TestLoop loop;
  Owner owner;
  owner.async = std::make_unique<OwnedHandle<uv_async_t>>(
      [&](uv_async_t* handle) {
        return uv_async_init(loop.get(), handle, [](uv_async_t* a) {
          auto* self = static_cast<Owner*>(a->data);
          ++self->calls;
          self->async.reset();
        });
      },
      &owner);
  REQUIRE(owner.async->ok());
  uv_async_send(owner.async->get());
  CHECK(loop.runUntil([&] { return owner.async == nullptr; }, 5s));
  CHECK(owner.calls == 1);
  CHECK(loop.close());
}

TEST_CASE("a failing init leaves the owner empty and nothing on the loop", "[core][handle]") {
  TestLoop loop;
  int calls = 0;
  // libuv refuses an address family a TCP handle cannot have, before touching the loop.
  OwnedHandle<uv_tcp_t> tcp(
      [&](uv_tcp_t* handle) {
        ++calls;
        return uv_tcp_init_ex(loop.get(), handle, AF_UNIX);
      },
      nullptr);
  CHECK(calls == 1);
  CHECK_FALSE(tcp.ok());
  CHECK(tcp.get() == nullptr);
  tcp.close();  // nothing to close
  CHECK(loop.close());
}

TEST_CASE("an owned loop closes the handles still open and runs their close callbacks",
          "[core][handle]") {
  // Declared before the loop: the loop's end closes it, so its memory must outlive the loop.
  uv_timer_t forgotten;
  bool fired = false;
  {
    core::OwnedLoop loop;
    uv_timer_init(loop.get(), &forgotten);
    forgotten.data = &fired;
    uv_timer_start(
        &forgotten, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, 10'000, 0);
    // A handle closed by its owner just before the loop ends is freed by the loop's last run.
    auto idle = std::make_unique<OwnedHandle<uv_idle_t>>(
        [&](uv_idle_t* handle) { return uv_idle_init(loop.get(), handle); }, nullptr);
    REQUIRE(idle->ok());
    idle.reset();
  }
  CHECK(uv_is_closing(reinterpret_cast<uv_handle_t*>(&forgotten)) != 0);
  // It was closed, not run to its end: the loop's last run does not wait ten seconds.
  CHECK_FALSE(fired);
}
