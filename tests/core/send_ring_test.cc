// The io_uring send ring by itself: several sends in one call, each with its own result. How
// Connection gathers writes and falls back is connection_test's (its "[io_uring]" cases).
#include "core/uv/send_ring.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <array>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

using core::RingSend;
using core::SendRing;

namespace {

// A connected unix stream pair, closed with the object.
struct SocketPair {
  SocketPair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds.data()) == 0); }
  ~SocketPair() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
  int sender() const { return fds[0]; }
  int receiver() const { return fds[1]; }
  std::string readAvailable() const {
    std::string out;
    char buffer[65536];
    for (;;) {
      ssize_t n = ::recv(receiver(), buffer, sizeof buffer, MSG_DONTWAIT);
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }
  std::array<int, 2> fds{-1, -1};
};

// The ring of this thread, or a skipped test where io_uring is refused (seccomp, old kernels).
SendRing* ringOrSkip() {
  SendRing* ring = SendRing::forThisThread();
  if (ring == nullptr) WARN("io_uring is not available here: the ring is not tested");
  return ring;
}

}  // namespace

TEST_CASE("one call sends to several sockets and reports each result", "[core][send_ring]") {
  SendRing* ring = ringOrSkip();
  if (ring == nullptr) return;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::vector<std::string> payloads;
  std::vector<RingSend> sends;
  for (int i = 0; i < 5; ++i) {
    pairs.push_back(std::make_unique<SocketPair>());
    payloads.push_back("message " + std::to_string(i) + std::string(static_cast<size_t>(i), '!'));
  }
  for (size_t i = 0; i < pairs.size(); ++i)
    sends.push_back({pairs[i]->sender(), payloads[i].data(), payloads[i].size()});
  uint64_t before = ring->calls();
  ring->send(sends);
  CHECK(ring->calls() == before + 1);
  for (size_t i = 0; i < pairs.size(); ++i) {
    CHECK(sends[i].result == static_cast<long>(payloads[i].size()));
    CHECK(pairs[i]->readAvailable() == payloads[i]);
  }
}

TEST_CASE("a full socket reports -EAGAIN, a partial one what it took", "[core][send_ring]") {
  SendRing* ring = ringOrSkip();
  if (ring == nullptr) return;
  SocketPair full;
  SocketPair partial;
  SocketPair open;
  int small = 4096;
  for (const SocketPair* pair : {&full, &partial}) {
    REQUIRE(::setsockopt(pair->sender(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
  }
  std::string filler(64 * 1024, 'f');
  while (::send(full.sender(), filler.data(), filler.size(), MSG_DONTWAIT) > 0) {
  }
  // The ring never waits for room: more than the buffer takes comes back as a short count.
  std::string large(1 << 20, 'L');
  std::string hello = "hello";
  std::array<RingSend, 3> sends{{{full.sender(), hello.data(), hello.size()},
                                 {partial.sender(), large.data(), large.size()},
                                 {open.sender(), hello.data(), hello.size()}}};
  ring->send(sends);
  CHECK(sends[0].result == -EAGAIN);
  CHECK(sends[1].result > 0);
  CHECK(sends[1].result < static_cast<long>(large.size()));
  CHECK(sends[2].result == 5);
  CHECK(open.readAvailable() == "hello");
  std::string received = partial.readAvailable();
  CHECK(received.size() == static_cast<size_t>(sends[1].result));
}

TEST_CASE("a failing send reports its errno and does not stop the others", "[core][send_ring]") {
  SendRing* ring = ringOrSkip();
  if (ring == nullptr) return;
  SocketPair shut;
  SocketPair fine;
  REQUIRE(::shutdown(shut.sender(), SHUT_WR) == 0);
  int notASocket = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  REQUIRE(notASocket >= 0);
  std::string data = "data";
  std::array<RingSend, 4> sends{{{shut.sender(), data.data(), data.size()},
                                 {notASocket, data.data(), data.size()},
                                 {-1, data.data(), data.size()},
                                 {fine.sender(), data.data(), data.size()}}};
  // MSG_NOSIGNAL: a send to a shut-down socket is an error, not a SIGPIPE for the process.
  ring->send(sends);
  CHECK(sends[0].result == -EPIPE);
  CHECK(sends[1].result == -ENOTSOCK);
  CHECK(sends[2].result == -EBADF);
  CHECK(sends[3].result == 4);
  CHECK(fine.readAvailable() == "data");
  ::close(notASocket);
  // The ring still serves the thread after errors.
  CHECK(SendRing::forThisThread() == ring);
}

TEST_CASE("more sends than the ring has entries go out in one call", "[core][send_ring]") {
  SendRing* ring = ringOrSkip();
  if (ring == nullptr) return;
  // Beyond the 256 submission entries of a ring, one socket each (as a loop's phase sends to
  // distinct peers); within the descriptors a test may hold.
  constexpr size_t kSends = 260;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::vector<std::string> payloads;
  std::vector<RingSend> sends;
  for (size_t i = 0; i < kSends; ++i) {
    pairs.push_back(std::make_unique<SocketPair>());
    payloads.push_back("send " + std::to_string(i));
  }
  for (size_t i = 0; i < kSends; ++i)
    sends.push_back({pairs[i]->sender(), payloads[i].data(), payloads[i].size()});
  uint64_t before = ring->calls();
  ring->send(sends);
  CHECK(ring->calls() == before + 1);
  size_t delivered = 0;
  for (size_t i = 0; i < kSends; ++i) {
    bool ok = sends[i].result == static_cast<long>(payloads[i].size()) &&
              pairs[i]->readAvailable() == payloads[i];
    if (ok) ++delivered;
  }
  CHECK(delivered == kSends);
}

TEST_CASE("setEnabled(false) turns the ring off for every thread, true brings it back",
          "[core][send_ring]") {
  SendRing* ring = SendRing::forThisThread();
  SendRing::setEnabled(false);
  CHECK(SendRing::forThisThread() == nullptr);
  SendRing::setEnabled(true);
  // The same ring as before (made once per thread), or none where io_uring is refused.
  CHECK(SendRing::forThisThread() == ring);
}

TEST_CASE("an empty batch is a call with nothing to send", "[core][send_ring]") {
  SendRing* ring = ringOrSkip();
  if (ring == nullptr) return;
  uint64_t before = ring->calls();
  ring->send({});
  CHECK(ring->calls() == before + 1);
}
