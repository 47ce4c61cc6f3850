// One TCP connect and nothing more, within a timeout: what a tcpSocket readiness probe asks.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <chrono>
#include <functional>

namespace core {

// Connects to `address` and closes the socket again; `done(connected)` runs once on the loop,
// never from inside dialOnce.
void dialOnce(uv_loop_t* loop, const sockaddr_storage& address, std::chrono::milliseconds timeout,
              std::function<void(bool)> done);

}  // namespace core
