// A stream connection on the loop (TCP or unix socket) with one timer: reading, writing with
// backpressure accounting, and a single close() that frees the object in the close callback.
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace core {

class Connection {
 public:
  enum class Kind { Tcp, Pipe };

  Connection(uv_loop_t* loop, Kind kind);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  uv_loop_t* loop() const { return loop_; }
  uv_stream_t* stream() { return &handle_.stream; }
  uv_tcp_t* tcp() { return &handle_.tcp; }
  uv_pipe_t* pipe() { return &handle_.pipe; }
  Kind kind() const { return kind_; }

  // From the thread that runs `loop` (one such loop per thread): what read callbacks write is
  // gathered until the loop's poll phase ends rather than until each callback returns, so that a
  // peer gets everything one phase produced for it in one system call and is woken once. On a
  // busy proxy that is about 3 % less CPU per small request. Stopped before the loop closes.
  static void gatherWritesPerPollPhase(uv_loop_t* loop);
  static void stopGatheringPerPollPhase();

  void startReading();
  void stopReading();
  bool isReading() const { return reading_; }

  // Writes the buffers: as much as the socket takes now, the rest copied and queued.
  // Returns false when the connection is closing or the write failed (then it closes).
  bool write(const uv_buf_t* buffers, unsigned count);
  bool write(std::string_view data);
  // Bytes queued for the socket (not counting small writes gathered and not yet sent).
  size_t queuedBytes() const { return queuedBytes_; }
  // Every byte accepted by write() that the socket has not taken yet.
  size_t unsentBytes() const { return queuedBytes_ + cork_.size(); }

  // Arms the connection's single timer (replacing any earlier arming); onTimeout fires once.
  // Re-arming is cheap: the libuv timer is only moved when the new deadline is earlier than
  // the one it is set for; otherwise it fires as set and waits again for what is left.
  void armTimer(std::chrono::milliseconds timeout);
  void cancelTimer();

  // Closes the socket and the timer; onClosed() runs when both are closed. Idempotent.
  void close();
  // After a TCP connect failed: closes the socket and makes a fresh one in its place (a socket
  // whose connect failed cannot connect again), then onSocketReplaced runs. The timer keeps
  // running. Nothing may have been written or read.
  void replaceSocket();
  bool closing() const { return closing_; }

 protected:
  virtual ~Connection() = default;

  // The most bytes the next read may take (never 0); reads are also bounded by the loop
  // thread's read buffer.
  virtual size_t readLimit() const { return SIZE_MAX; }
  // Bytes read; valid only during the call.
  virtual void onData(const char* data, size_t length) = 0;
  // The peer closed (UV_EOF) or reading failed; the connection is still open.
  virtual void onReadEnd(int status) = 0;
  // The queue of unwritten bytes emptied after having been non-empty.
  virtual void onWriteDrained() {}
  // A queued write failed; the connection is closing.
  virtual void onWriteFailed(int status) { (void)status; }
  virtual void onTimeout() {}
  // Both handles are closed: the default frees the object.
  virtual void onClosed() { delete this; }
  // replaceSocket finished: the new socket is ready to connect.
  virtual void onSocketReplaced() {}

 private:
  struct WriteRequest;
  static void allocCallback(uv_handle_t* handle, size_t suggested, uv_buf_t* buffer);
  static void readCallback(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buffer);
  static void writeCallback(uv_write_t* request, int status);
  static void closeCallback(uv_handle_t* handle);
  static void timerCallback(uv_timer_t* timer);
  void failWrite(int status);
  bool writeNow(const uv_buf_t* buffers, unsigned count);
  // Copies what follows the first `skip` bytes and queues it behind earlier writes; returns a
  // libuv error (the caller fails the connection) or 0.
  int queue(const uv_buf_t* buffers, unsigned count, size_t skip);
  int queue(std::string_view data, size_t skip);
  void flushCork();
  static void flushCorked();
  // Sends the gathered writes of every connection flushCorked holds in one system call; false
  // where this thread has no send ring.
  static bool sendTogether();

  uv_loop_t* loop_;
  Kind kind_;
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } handle_;
  uv_timer_t timer_;
  static constexpr uint64_t kNoDeadline = UINT64_MAX;
  uint64_t deadline_ = kNoDeadline;  // uv_now() milliseconds when onTimeout is due
  uint64_t timerDue_ = kNoDeadline;  // when the libuv timer fires, if started
  size_t queuedBytes_ = 0;
  std::string cork_;
  // Listed for flushCorked: once only, even when a large write took the cork meanwhile.
  bool corkListed_ = false;
  int openHandles_ = 2;
  bool reading_ = false;
  bool closing_ = false;
  bool replacing_ = false;  // the socket is closing for replaceSocket
};

}  // namespace core
