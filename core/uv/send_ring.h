// Sends to several sockets with one system call, through an io_uring of the calling thread.
//
// A loop that gathers writes per poll phase ends the phase with one write per peer that has
// something to receive. Each of those writes can wake a peer, and a peer woken onto the
// proxy's CPU runs as soon as the write returns: with N writes the proxy can be switched out N
// times per phase. Handed to the kernel in one io_uring_enter, the N sends wake their peers
// within one system call and the proxy is switched out at most once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace core {

struct RingSend {
  int fd;
  const char* data;
  size_t length;
  // Bytes the socket took, or a negative errno (-EAGAIN when it took none).
  long result = 0;
};

class SendRing {
 public:
  // The calling thread's ring, made on first use; nullptr where io_uring is unavailable (old
  // kernels, seccomp profiles that deny it, as the defaults of Docker 25 and containerd 2.0 and
  // later do) or was turned off with setEnabled(false).
  static SendRing* forThisThread();
  // Process-wide; from main before any loop runs.
  static void setEnabled(bool enabled);

  // Sends each buffer with MSG_DONTWAIT: never waits for room, sets every result.
  void send(std::span<RingSend> sends);
  // Calls of send() so far on this ring.
  uint64_t calls() const { return calls_; }

  SendRing(const SendRing&) = delete;
  SendRing& operator=(const SendRing&) = delete;
  ~SendRing();

 private:
  struct Ring;
  explicit SendRing(Ring* ring) : ring_(ring) {}
  Ring* ring_;
  uint64_t calls_ = 0;
};

}  // namespace core
