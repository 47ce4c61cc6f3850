#include "core/uv/send_ring.h"

#include <liburing.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>

namespace core {

namespace {

// Submission entries per ring: a phase with more sends than this submits in several calls.
constexpr unsigned kEntries = 256;
std::atomic<bool> enabled{true};

}  // namespace

struct SendRing::Ring {
  io_uring ring;
  // Set when the kernel refused a submission or a wait: the ring is not used again, so entries
  // it did not take are never sent late.
  bool broken = false;
};

void SendRing::setEnabled(bool on) {
  enabled.store(on, std::memory_order_relaxed);
}

SendRing* SendRing::forThisThread() {
  thread_local std::unique_ptr<SendRing> mine;
  thread_local bool tried = false;
  if (!enabled.load(std::memory_order_relaxed)) return nullptr;
  if (!tried) {
    tried = true;
    auto ring = std::make_unique<Ring>();
    if (io_uring_queue_init(kEntries, &ring->ring, 0) == 0)
      mine.reset(new SendRing(ring.release()));
  }
  return mine && !mine->ring_->broken ? mine.get() : nullptr;
}

SendRing::~SendRing() {
  io_uring_queue_exit(&ring_->ring);
  delete ring_;
}

void SendRing::send(std::span<RingSend> sends) {
  ++calls_;
  for (RingSend& s : sends)
    s.result = -EAGAIN;
  while (!sends.empty() && !ring_->broken) {
    auto part = sends.first(std::min<size_t>(sends.size(), kEntries));
    sends = sends.subspan(part.size());
    for (size_t i = 0; i < part.size(); ++i) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_->ring);
      io_uring_prep_send(sqe, part[i].fd, part[i].data, part[i].length,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
      io_uring_sqe_set_data64(sqe, i);
    }
    // Entries are taken in order: those the kernel did not take keep -EAGAIN (not sent).
    size_t taken = 0;
    while (taken < part.size()) {
      int rc = io_uring_submit(&ring_->ring);
      if (rc == -EINTR) continue;
      if (rc <= 0) {
        ring_->broken = true;
        break;
      }
      taken += static_cast<size_t>(rc);
    }
    for (size_t done = 0; done < taken;) {
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_wait_cqe(&ring_->ring, &cqe);
      if (rc == -EINTR) continue;
      if (rc != 0) {
        // Whether the rest were sent is unknown: their connections must fail, not resend.
        ring_->broken = true;
        for (size_t i = 0; i < taken; ++i)
          if (part[i].result == -EAGAIN) part[i].result = -EIO;
        break;
      }
      part[io_uring_cqe_get_data64(cqe)].result = cqe->res;
      io_uring_cqe_seen(&ring_->ring, cqe);
      ++done;
    }
  }
}

}  // namespace core
