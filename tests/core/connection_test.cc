// Connection's write gathering on a real loop, over unix socket pairs.
#include "core/uv/connection.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <string>
#include <thread>
#include <vector>

#include "core/uv/send_ring.h"

using namespace core;

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

namespace {

// The agent's side of a loopback TCP connection, answering each read with "<data>!", and its
// peer as a plain blocking socket.
class TcpAnswering : public Connection {
 public:
  explicit TcpAnswering(uv_loop_t* loop) : Connection(loop, Kind::Tcp) {}
  ~TcpAnswering() override = default;

  // Written between the data read and "!".
  std::string large;
  std::string padding;
  // Written to `drainedTo` when this connection's writes have all been taken.
  TcpAnswering* drainedTo = nullptr;
  int writeFailure = 0;
  bool closed = false;

 protected:
  void onData(const char* data, size_t length) override {
    write(std::string_view(data, length));
    // Too large to be gathered: sent at once, after what was gathered before it.
    if (!large.empty()) write(large);
    write(padding);
    write("!");
  }
  void onReadEnd(int) override { close(); }
  void onWriteDrained() override {
    if (drainedTo != nullptr) drainedTo->write("X");
  }
  void onWriteFailed(int status) override { writeFailure = status; }
  void onClosed() override { closed = true; }
};

struct TcpPair {
  int peer = -1;
  TcpAnswering* connection = nullptr;
};

// Connected loopback sockets: the agent's end wrapped in a TcpAnswering on `loop`.
TcpPair tcpPair(uv_loop_t* loop) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), length) == 0);
  REQUIRE(::listen(listener, 1) == 0);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  TcpPair pair;
  pair.peer = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(pair.peer, reinterpret_cast<sockaddr*>(&address), length) == 0);
  int accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  REQUIRE(accepted >= 0);
  ::close(listener);
  pair.connection = new TcpAnswering(loop);
  REQUIRE(uv_tcp_open(pair.connection->tcp(), accepted) == 0);
  pair.connection->startReading();
  return pair;
}

// Shrinks the agent's send buffer of `pair` and the peer's receive buffer, and fills both (the
// peer does not read); returns the bytes written.
size_t fillSendBuffer(TcpPair& pair) {
  uv_os_fd_t fd;
  REQUIRE(uv_fileno(reinterpret_cast<uv_handle_t*>(pair.connection->tcp()), &fd) == 0);
  int size = 4096;
  REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
  REQUIRE(::setsockopt(pair.peer, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) == 0);
  std::string chunk(64 * 1024, 'f');
  size_t total = 0;
  for (;;) {
    ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
  REQUIRE(total > 0);
  return total;
}

std::string readExactly(int fd, size_t length) {
  std::string out(length, '\0');
  size_t got = 0;
  while (got < length) {
    ssize_t n = ::read(fd, out.data() + got, length - got);
    REQUIRE(n > 0);
    got += static_cast<size_t>(n);
  }
  return out;
}

// One gathering loop with `count` loopback TCP connections, each sent "hi" by its peer.
struct Phase {
  uv_loop_t loop;
  std::vector<TcpPair> pairs;

  explicit Phase(size_t count) {
    uv_loop_init(&loop);
    for (size_t i = 0; i < count; ++i)
      pairs.push_back(tcpPair(&loop));
    Connection::gatherWritesPerPollPhase(&loop);
  }
  // Has every peer send "hi" and runs the loop until every connection has read it.
  void runOne() {
    for (TcpPair& pair : pairs)
      REQUIRE(::write(pair.peer, "hi", 2) == 2);
    // A connection whose bytes arrive after the poll has returned is handled by the next turn.
    for (int turn = 0; turn < 3; ++turn)
      uv_run(&loop, UV_RUN_NOWAIT);
  }
  ~Phase() {
    Connection::stopGatheringPerPollPhase();
    for (TcpPair& pair : pairs)
      pair.connection->close();
    uv_run(&loop, UV_RUN_DEFAULT);
    for (TcpPair& pair : pairs) {
      CHECK(pair.connection->closed);
      delete pair.connection;
      if (pair.peer >= 0) ::close(pair.peer);
    }
    CHECK(uv_loop_close(&loop) == 0);
  }
};

uint64_t ringCalls() {
  SendRing* ring = SendRing::forThisThread();
  return ring != nullptr ? ring->calls() : 0;
}

}  // namespace

TEST_CASE("a poll phase's writes to several TCP peers go out in one io_uring call",
          "[agent][connection][io_uring]") {
  bool ring = SendRing::forThisThread() != nullptr;
  if (!ring) WARN("io_uring is not available here: only the fallback is checked");
  for (bool enabled : {true, false}) {
    uint64_t before = ringCalls();
    SendRing::setEnabled(enabled);
    {
      Phase phase(4);
      phase.runOne();
      for (TcpPair& pair : phase.pairs) {
        CHECK(pair.connection->unsentBytes() == 0);
        CHECK(readExactly(pair.peer, 3) == "hi!");
      }
    }
    SendRing::setEnabled(true);
    uint64_t calls = ringCalls() - before;
    // Up to one call per loop turn that found several connections with gathered writes.
    if (enabled && ring) {
      CHECK(calls >= 1);
      CHECK(calls <= 3);
    } else {
      CHECK(calls == 0);
    }
  }
}

TEST_CASE("what a socket does not take of a batched send is queued in order",
          "[agent][connection][io_uring]") {
  Phase phase(3);
  size_t filled = fillSendBuffer(phase.pairs[1]);
  // An answer larger than any room left (the socket takes none or a few bytes of it), but small
  // enough to be gathered.
  std::string padding(12000, 'p');
  phase.pairs[1].connection->padding = padding;
  // Whatever order the phase sends in, what connection 0 writes to connection 1 once its own
  // write was taken follows connection 1's answer.
  phase.pairs[0].connection->drainedTo = phase.pairs[1].connection;
  phase.runOne();
  CHECK(readExactly(phase.pairs[0].peer, 3) == "hi!");
  CHECK(readExactly(phase.pairs[2].peer, 3) == "hi!");
  CHECK(phase.pairs[1].connection->unsentBytes() > 0);
  // The peer reads: the queue drains as the socket takes it.
  std::string expected = std::string(filled, 'f') + "hi" + padding + "!X";
  std::string received;
  std::thread reader([&] { received = readExactly(phase.pairs[1].peer, expected.size()); });
  while (phase.pairs[1].connection->unsentBytes() > 0)
    uv_run(&phase.loop, UV_RUN_ONCE);
  reader.join();
  CHECK(received == expected);
}

TEST_CASE("a batched send that fails closes that connection only",
          "[agent][connection][io_uring]") {
  Phase phase(3);
  // The agent's end of connection 1 can no longer send: its answer fails with EPIPE.
  uv_os_fd_t fd;
  REQUIRE(uv_fileno(reinterpret_cast<uv_handle_t*>(phase.pairs[1].connection->tcp()), &fd) == 0);
  REQUIRE(::shutdown(fd, SHUT_WR) == 0);
  phase.runOne();
  CHECK(phase.pairs[1].connection->writeFailure == UV_EPIPE);
  CHECK(phase.pairs[1].connection->closing());
  for (size_t i : {0, 2}) {
    CHECK(readExactly(phase.pairs[i].peer, 3) == "hi!");
    CHECK_FALSE(phase.pairs[i].connection->closing());
  }
}

TEST_CASE("a connection whose gathered bytes a large write took is sent once in a batch",
          "[agent][connection][io_uring]") {
  Phase phase(3);
  std::string large(20000, 'L');
  phase.pairs[1].connection->large = large;
  std::string expected = "hi" + large + "!";
  std::string received;
  std::thread reader([&] { received = readExactly(phase.pairs[1].peer, expected.size()); });
  phase.runOne();
  while (phase.pairs[1].connection->unsentBytes() > 0)
    uv_run(&phase.loop, UV_RUN_ONCE);
  reader.join();
  CHECK(received == expected);
  // Nothing more: the "!" was not sent twice.
  pollfd more{phase.pairs[1].peer, POLLIN, 0};
  CHECK(::poll(&more, 1, 50) == 0);
  for (size_t i : {0, 2})
    CHECK(readExactly(phase.pairs[i].peer, 3) == "hi!");
}
