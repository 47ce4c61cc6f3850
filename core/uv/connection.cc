#include "core/uv/connection.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "core/util/assert.h"
#include "core/uv/send_ring.h"

namespace core {

namespace {

// One read buffer per loop thread, made by its first read (other threads never pay for it):
// data is consumed (or copied) within the read callback. 256 KiB reads a 100 KiB answer that
// has arrived in one go: a proxied 100 KiB request takes 2.4 reads and 2.4 writes where 64 KiB
// took 3.1 of each, and about 10 % less CPU.
constexpr size_t kReadBufferSize = 256 * 1024;

char* readBuffer() {
  thread_local std::unique_ptr<char[]> buffer(new char[kReadBufferSize]);
  return buffer.get();
}

// Small writes made while a read callback runs are gathered per connection and sent with one
// system call when the callback returns: a proxied request or response then costs one write
// (head and body together) instead of one per piece. On a loop that gathers per poll phase they
// are sent when the phase ends instead, after every read callback of the phase (see
// gatherWritesPerPollPhase).
constexpr size_t kCorkLimit = 16 * 1024;
thread_local int readDepth = 0;
thread_local std::vector<Connection*> corked;
thread_local uv_loop_t* phaseLoop = nullptr;
thread_local uv_check_t phaseEnd;
// What flushCorked works on: swapped with `corked` and with each connection's cork buffer, so
// that their capacity is reused instead of allocated anew for every write. A connection keeps at
// most kKeptCorkCapacity of it while idle.
thread_local std::vector<Connection*> flushing;
thread_local std::string sending;
constexpr size_t kKeptCorkCapacity = 4 * 1024;

}  // namespace

struct Connection::WriteRequest {
  uv_write_t request;
  Connection* owner;
  std::string data;
};

Connection::Connection(uv_loop_t* loop, Kind kind) : loop_(loop), kind_(kind) {
  if (kind == Kind::Tcp) {
    uv_tcp_init(loop, &handle_.tcp);
  } else {
    uv_pipe_init(loop, &handle_.pipe, 0);
  }
  handle_.handle.data = this;
  uv_timer_init(loop, &timer_);
  timer_.data = this;
}

void Connection::startReading() {
  if (reading_ || closing_) return;
  if (uv_read_start(stream(), allocCallback, readCallback) == 0) reading_ = true;
}

void Connection::stopReading() {
  if (!reading_) return;
  uv_read_stop(stream());
  reading_ = false;
}

void Connection::allocCallback(uv_handle_t* handle, size_t, uv_buf_t* buffer) {
  const auto* self = static_cast<const Connection*>(handle->data);
  size_t size = std::min(kReadBufferSize, self->readLimit());
  *buffer = uv_buf_init(readBuffer(), static_cast<unsigned>(size));
}

void Connection::readCallback(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buffer) {
  auto* self = static_cast<Connection*>(stream->data);
  ++readDepth;
  if (nread > 0) {
    self->onData(buffer->base, static_cast<size_t>(nread));
  } else if (nread < 0) {
    self->stopReading();
    self->onReadEnd(static_cast<int>(nread));
  }
  if (--readDepth == 0 && self->loop_ != phaseLoop) flushCorked();
}

void Connection::gatherWritesPerPollPhase(uv_loop_t* loop) {
  stopGatheringPerPollPhase();
  phaseLoop = loop;
  uv_check_init(loop, &phaseEnd);
  uv_check_start(&phaseEnd, [](uv_check_t*) {
    if (!corked.empty()) flushCorked();
  });
  uv_unref(reinterpret_cast<uv_handle_t*>(&phaseEnd));
}

void Connection::stopGatheringPerPollPhase() {
  if (phaseLoop == nullptr) return;
  flushCorked();
  uv_close(reinterpret_cast<uv_handle_t*>(&phaseEnd), nullptr);
  phaseLoop = nullptr;
}

void Connection::flushCorked() {
  // Connections are freed only in close callbacks, which never run inside a read callback, so
  // every pointer here is still valid.
  flushing.swap(corked);
  for (Connection* connection : flushing)
    connection->corkListed_ = false;
  if (flushing.size() > 1 && sendTogether()) {
    flushing.clear();
    return;
  }
  for (Connection* connection : flushing)
    connection->flushCork();
  flushing.clear();
}

void Connection::flushCork() {
  if (cork_.empty() || closing_) return;
  sending.swap(cork_);
  uv_buf_t buffer = uv_buf_init(sending.data(), static_cast<unsigned>(sending.size()));
  bool written = writeNow(&buffer, 1);
  sending.clear();
  if (sending.capacity() > kKeptCorkCapacity) std::string().swap(sending);
  if (written && queuedBytes_ == 0) onWriteDrained();
}

bool Connection::sendTogether() {
  SendRing* ring = SendRing::forThisThread();
  if (ring == nullptr) return false;
  thread_local std::vector<RingSend> sends;
  thread_local std::vector<Connection*> senders;
  thread_local std::vector<Connection*> others;
  for (Connection* connection : flushing) {
    if (connection->cork_.empty() || connection->closing_) continue;
    uv_os_fd_t fd;
    // Connections with bytes queued (which go first) and unix sockets take the usual write.
    if (connection->queuedBytes_ != 0 || connection->kind_ != Kind::Tcp ||
        uv_fileno(&connection->handle_.handle, &fd) != 0) {
      others.push_back(connection);
      continue;
    }
    sends.push_back({fd, connection->cork_.data(), connection->cork_.size()});
    senders.push_back(connection);
  }
  ring->send(sends);
  // What a socket did not take is queued before any callback runs, as a callback may write to
  // another connection of the batch.
  for (size_t i = 0; i < sends.size(); ++i) {
    Connection* connection = senders[i];
    long& result = sends[i].result;
    if (result == -EAGAIN) result = 0;
    if (result >= 0) result = connection->queue(connection->cork_, static_cast<size_t>(result));
    connection->cork_.clear();
    if (connection->cork_.capacity() > kKeptCorkCapacity) std::string().swap(connection->cork_);
  }
  for (size_t i = 0; i < sends.size(); ++i) {
    Connection* connection = senders[i];
    if (sends[i].result < 0) {
      connection->failWrite(static_cast<int>(sends[i].result));
    } else if (!connection->closing_ && connection->queuedBytes_ == 0) {
      connection->onWriteDrained();
    }
  }
  for (Connection* connection : others)
    connection->flushCork();
  sends.clear();
  senders.clear();
  others.clear();
  return true;
}

bool Connection::write(std::string_view data) {
  uv_buf_t buffer = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
  return write(&buffer, 1);
}

bool Connection::write(const uv_buf_t* buffers, unsigned count) {
  if (closing_) return false;
  size_t total = 0;
  for (unsigned i = 0; i < count; ++i)
    total += buffers[i].len;
  if (total == 0) return true;
  if (readDepth > 0 && cork_.size() + total <= kCorkLimit) {
    if (!corkListed_) {
      corked.push_back(this);
      corkListed_ = true;
    }
    for (unsigned i = 0; i < count; ++i)
      cork_.append(buffers[i].base, buffers[i].len);
    return true;
  }
  if (!cork_.empty()) {
    // What was gathered goes first, in the same system call as this larger write.
    std::vector<uv_buf_t> all;
    all.reserve(count + 1);
    std::string gathered = std::move(cork_);
    cork_.clear();
    all.push_back(uv_buf_init(gathered.data(), static_cast<unsigned>(gathered.size())));
    all.insert(all.end(), buffers, buffers + count);
    return writeNow(all.data(), static_cast<unsigned>(all.size()));
  }
  return writeNow(buffers, count);
}

bool Connection::writeNow(const uv_buf_t* buffers, unsigned count) {
  size_t written = 0;
  if (queuedBytes_ == 0) {
    int rc = uv_try_write(stream(), buffers, count);
    if (rc >= 0) {
      written = static_cast<size_t>(rc);
    } else if (rc != UV_EAGAIN) {
      failWrite(rc);
      return false;
    }
  }
  int rc = queue(buffers, count, written);
  if (rc != 0) {
    failWrite(rc);
    return false;
  }
  return true;
}

int Connection::queue(std::string_view data, size_t skip) {
  uv_buf_t buffer = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
  return queue(&buffer, 1, skip);
}

int Connection::queue(const uv_buf_t* buffers, unsigned count, size_t skip) {
  size_t total = 0;
  for (unsigned i = 0; i < count; ++i)
    total += buffers[i].len;
  if (skip >= total) return 0;
  auto* request = new WriteRequest{{}, this, {}};
  request->data.reserve(total - skip);
  for (unsigned i = 0; i < count; ++i) {
    size_t len = buffers[i].len;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    request->data.append(buffers[i].base + skip, len - skip);
    skip = 0;
  }
  request->request.data = request;
  uv_buf_t rest = uv_buf_init(request->data.data(), static_cast<unsigned>(request->data.size()));
  int rc = uv_write(&request->request, stream(), &rest, 1, writeCallback);
  if (rc != 0) {
    delete request;
    return rc;
  }
  queuedBytes_ += request->data.size();
  return 0;
}

void Connection::writeCallback(uv_write_t* req, int status) {
  auto* request = static_cast<WriteRequest*>(req->data);
  Connection* self = request->owner;
  self->queuedBytes_ -= request->data.size();
  delete request;
  if (status != 0) {
    if (status != UV_ECANCELED) self->failWrite(status);
    return;
  }
  if (self->queuedBytes_ == 0 && !self->closing_) self->onWriteDrained();
}

void Connection::failWrite(int status) {
  if (closing_) return;
  close();
  onWriteFailed(status);
}

void Connection::armTimer(std::chrono::milliseconds timeout) {
  if (closing_) return;
  uint64_t now = uv_now(loop_);
  deadline_ = now + static_cast<uint64_t>(std::max<int64_t>(timeout.count(), 0));
  // Requests re-arm their connection's timer several times each; moving the libuv timer every
  // time would cost a heap update per call.
  if (timerDue_ <= deadline_) return;
  timerDue_ = deadline_;
  uv_timer_start(&timer_, timerCallback, deadline_ - now, 0);
}

void Connection::cancelTimer() {
  // The libuv timer stays set: when it fires, it finds no deadline and stops.
  deadline_ = kNoDeadline;
}

void Connection::timerCallback(uv_timer_t* timer) {
  auto* self = static_cast<Connection*>(timer->data);
  self->timerDue_ = kNoDeadline;
  if (self->closing_ || self->deadline_ == kNoDeadline) return;
  uint64_t now = uv_now(self->loop_);
  if (now < self->deadline_) {
    self->timerDue_ = self->deadline_;
    uv_timer_start(timer, timerCallback, self->deadline_ - now, 0);
    return;
  }
  self->deadline_ = kNoDeadline;
  self->onTimeout();
}

void Connection::close() {
  if (closing_) return;
  if (!cork_.empty()) {
    // Best effort, as for queued writes: what the socket takes now is sent.
    uv_buf_t buffer = uv_buf_init(cork_.data(), static_cast<unsigned>(cork_.size()));
    uv_try_write(stream(), &buffer, 1);
    cork_.clear();
  }
  closing_ = true;
  reading_ = false;
  // A socket closing for replaceSocket counts as closed when that close completes.
  if (!replacing_) uv_close(&handle_.handle, closeCallback);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), closeCallback);
}

void Connection::replaceSocket() {
  KSA_ASSERT(kind_ == Kind::Tcp && !closing_ && !replacing_);
  KSA_ASSERT(queuedBytes_ == 0 && cork_.empty());
  replacing_ = true;
  reading_ = false;
  uv_close(&handle_.handle, [](uv_handle_t* handle) {
    auto* self = static_cast<Connection*>(handle->data);
    self->replacing_ = false;
    if (self->closing_) {
      if (--self->openHandles_ == 0) self->onClosed();
      return;
    }
    uv_tcp_init(self->loop_, &self->handle_.tcp);
    self->handle_.handle.data = self;
    self->onSocketReplaced();
  });
}

void Connection::closeCallback(uv_handle_t* handle) {
  auto* self = static_cast<Connection*>(handle->data);
  if (--self->openHandles_ == 0) self->onClosed();
}

}  // namespace core
