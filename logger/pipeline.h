// The delivery path for http:// sinks: an HTTP/1.1 client on the loop that pipelines events over
// a few kept-alive connections. What was queued is written with one writev per connection, at
// most every 2 ms under load; answers are parsed with llhttp and matched to events in order.
// Cheaper than a curl transfer per event, which costs several syscalls and allocations.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/client/resolver.h"
#include "core/util/backoff.h"
#include "core/uv/timer.h"
#include "logger/event.h"

struct uv_loop_s;

namespace logger {

// Where an http:// URL points. Only plain URLs: no user info.
struct SinkAddress {
  std::string host;  // name or IP literal, without brackets
  uint16_t port = 80;
  std::string authority;  // the Host header
  std::string target;     // origin-form: path and query
};

// The address of an http:// URL; nullopt for other schemes and for URLs this client leaves to
// curl (user info, a bad port).
std::optional<SinkAddress> parseHttpUrl(std::string_view url);

// The outcome of one delivery.
struct PipelineResult {
  long status = 0;    // 0: no answer, see error
  std::string error;  // why there is no answer (refused, reset, timeout, ...)
  // The sink closed the connection without answering this event after it had answered earlier
  // ones on it (keep-alive close, Connection: close, a close between answers): the event was
  // not processed, or its answer was lost; it is sent again at once without spending an attempt.
  bool unanswered = false;
};

class PipelineClient {
 public:
  struct Options {
    SinkAddress sink;
    int connections = 5;
    size_t depth = 1024;  // events in flight on one connection
    // Bounds the oldest event in flight on a connection (connect included); 0: none.
    std::chrono::milliseconds timeout{std::chrono::seconds(10)};
    // After a connection failed without any answer, no new one is opened for this long
    // (doubling per failure in a row, with jitter), so a sink that is down costs little.
    core::Backoff backoff;
    std::string userAgent = "kserve-agent";
    // Where the sink listens, tried in order until one accepts (as Go's dialer does: `localhost`
    // may be ::1 first while the sink listens on 127.0.0.1 only). Empty: `sink.host` is taken
    // as an IP literal, or else resolved for every new connection.
    std::vector<sockaddr_storage> addresses;
    // The copies of small bodies written next to their heads count here until the kernel has
    // taken them (with a sink that stops reading, until the connection ends).
    std::shared_ptr<ByteBudget> budget;
  };
  // The next delivery to send; nullopt when there is none.
  using Take = std::function<std::optional<Delivery>()>;
  // A delivery is over: answered, or failed. May call wake() but not destroy the client.
  using Done = std::function<void(Delivery, PipelineResult)>;

  // `format` writes the events' CE headers; it must outlive the client.
  PipelineClient(uv_loop_s* loop, Options options, const EventFormat& format, Take take, Done done);
  // Closes every connection; the deliveries still held are destroyed without callbacks.
  ~PipelineClient();
  PipelineClient(const PipelineClient&) = delete;
  PipelineClient& operator=(const PipelineClient&) = delete;

  // There may be deliveries to take: they are taken and written after this loop turn, or once
  // 2 ms have passed since the last write.
  void wake();
  // Closes every connection and hands back what they held, without callbacks.
  std::vector<Delivery> abandon();
  // Deliveries taken and not done yet.
  size_t held() const { return held_; }
  // Connections opened so far (keep-alive keeps this low).
  uint64_t connectionsOpened() const { return connectionsOpened_; }

 private:
  struct Connection;
  struct Socket;
  struct WriteBatch;
  enum class Ending { Closed, TimedOut };

  void flush();
  // Takes events for the connection until it holds `cap`; false when none was left to take.
  bool fill(Connection& connection, size_t cap, uint64_t now);
  void dial(Connection& connection);
  // Connects to the connection's next address.
  void connectNext(Connection& connection);
  void onConnected(Connection& connection, int status);
  void write(Connection& connection);
  void onRead(Connection& connection, const char* data, size_t length);
  // At a message boundary, an answer byte for byte the same as the latest one parsed whole
  // (sinks answer every event alike) is taken as such without parsing: `position` moves past it
  // and the connection's status is set. False when the bytes there differ.
  bool skipKnownAnswer(Connection& connection, const char*& position, const char* last);
  void onEof(Connection& connection);
  // The head event got its answer.
  void answer(Connection& connection, long status);
  uint64_t deadlineOf(const Connection& connection) const;
  void armDeadline(Connection& connection);
  void checkDeadline(Connection& connection);
  // Closes the connection's socket and settles every delivery it held.
  void end(Connection& connection, Ending ending, const std::string& error);
  void closeSocket(Connection& connection);
  void serialize(const Event& event, std::string& out) const;

  uv_loop_s* loop_;
  Options options_;
  Take take_;
  Done done_;
  const EventFormat& format_;
  std::string prefix_;  // request line, Host and User-Agent: the same for every event
  std::vector<std::unique_ptr<Connection>> connections_;
  core::Timer flushTimer_;
  bool flushArmed_ = false;
  uint64_t lastFlush_ = 0;  // uv_now milliseconds of the last flush
  core::Timer redialTimer_;
  uint64_t redialNotBefore_ = 0;  // uv_now milliseconds
  int failuresInRow_ = 0;
  bool oneAtATime_ = false;  // the sink's last answer closed its connection
  size_t held_ = 0;
  uint64_t connectionsOpened_ = 0;
  std::vector<char> readBuffer_;
  std::string knownAnswer_;  // see skipKnownAnswer
  long knownStatus_ = 0;
  core::Resolver resolver_;  // the sink's name, when it is one
};

}  // namespace logger
