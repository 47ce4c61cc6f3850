// Connection's write gathering on a real loop, over unix socket pairs.
#include "agent/connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <string>

using namespace agent;

namespace {

// Answers every read with two writes, and records what the other connection still had unsent
// when this one's read callback ran.
class Answering : public Connection {
 public:
  explicit Answering(uv_loop_t* loop) : Connection(loop, Kind::Pipe) {}
  ~Answering() override = default;

  const Answering* other = nullptr;
  size_t otherUnsentSeen = 0;
  bool closed = false;

 protected:
  void onData(const char* data, size_t length) override {
    write(std::string_view(data, length));
    write("!");
    if (other != nullptr) otherUnsentSeen = other->unsentBytes();
  }
  void onReadEnd(int) override { close(); }
  void onClosed() override { closed = true; }
};

struct Pair {
  std::array<int, 2> fds{-1, -1};
  Answering* connection = nullptr;
};

// Runs one loop iteration in which both connections have a read to handle; returns the larger
// of what each saw the other still had unsent, and checks what their peers received.
size_t unsentSeenInOnePhase(bool gather) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::array<Pair, 2> pairs;
  for (Pair& pair : pairs) {
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair.fds.data()) == 0);
    pair.connection = new Answering(&loop);
    REQUIRE(uv_pipe_open(pair.connection->pipe(), pair.fds[0]) == 0);
    pair.connection->startReading();
  }
  pairs[0].connection->other = pairs[1].connection;
  pairs[1].connection->other = pairs[0].connection;
  if (gather) Connection::gatherWritesPerPollPhase(&loop);
  for (Pair& pair : pairs)
    REQUIRE(::write(pair.fds[1], "hi", 2) == 2);

  uv_run(&loop, UV_RUN_ONCE);

  size_t seen = 0;
  for (Pair& pair : pairs) {
    seen = std::max(seen, pair.connection->otherUnsentSeen);
    CHECK(pair.connection->unsentBytes() == 0);
    char buffer[16];
    CHECK(::read(pair.fds[1], buffer, sizeof buffer) == 3);
    CHECK(std::string(buffer, 3) == "hi!");
  }
  if (gather) Connection::stopGatheringPerPollPhase();
  for (Pair& pair : pairs)
    pair.connection->close();
  uv_run(&loop, UV_RUN_DEFAULT);
  for (Pair& pair : pairs) {
    CHECK(pair.connection->closed);
    delete pair.connection;
    ::close(pair.fds[1]);
  }
  CHECK(uv_loop_close(&loop) == 0);
  return seen;
}

}  // namespace

TEST_CASE("writes made in a read callback are sent when the callback returns",
          "[agent][connection]") {
  CHECK(unsentSeenInOnePhase(false) == 0);
}

TEST_CASE("on a gathering loop writes made in read callbacks wait for the end of the poll phase",
          "[agent][connection]") {
  // Whichever callback ran second saw the first one's three bytes still gathered.
  CHECK(unsentSeenInOnePhase(true) == 3);
  // Stopping gathering restores sending per callback.
  CHECK(unsentSeenInOnePhase(false) == 0);
}
