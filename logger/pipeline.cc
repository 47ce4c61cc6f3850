#include "logger/pipeline.h"

#include <signal.h>
#include <uv.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <utility>

#include "core/http/parser.h"
#include "core/http/url.h"
#include "core/util/recycle.h"

namespace logger {

using namespace std::string_view_literals;

namespace {

// Bodies up to this size are copied next to their head; larger ones are written from where they
// are, as a buffer of their own in the same writev.
constexpr size_t kInlineBody = 16 * 1024;
constexpr size_t kReadBufferBytes = 64 * 1024;
// What an event's CE headers and Content-Length usually take, beyond the request line prefix.
constexpr size_t kHeadEstimate = 512;
// Under load, what is queued goes out at most this often: fewer and larger writes wake the sink
// less often, which costs both sides less CPU than a write per loop turn. An event that finds
// the client idle for longer is written at once.
constexpr std::chrono::milliseconds kMinFlushInterval{2};
// How long the oldest event on a connection may wait for its answer before new events go to
// another connection (see flush).
constexpr uint64_t kSlowAnswerMs = 200;
// Answers up to this size are remembered for skipKnownAnswer (a sink's usual answer, a status
// line and a few headers, is well under it).
constexpr size_t kKnownAnswerBytes = 512;
// A sink's answer head: small (a status line and a few fields); more is refused as malformed.
constexpr core::ParserLimits kAnswerLimits{64 * 1024, 100};

// Writing to a connection the sink has closed raises SIGPIPE (libuv writes without
// MSG_NOSIGNAL). The agent ignores it already; so does any other host of this client, unless it
// installed a handler of its own.
void ignoreSigpipe() {
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    signal(SIGPIPE, SIG_IGN);
  }
}

std::string uvError(const char* what, int status) {
  return std::string(what) + ": " + uv_strerror(status);
}

}  // namespace

namespace {

// Bytes a request target may not hold (RFC 3986 §2: controls, space, non-ASCII and the
// excluded "<>\"\\^`{|}") percent-encoded, as Go's client sends such a URL.
void appendTarget(std::string& out, std::string_view target) {
  constexpr std::string_view kExcluded = "\"<>\\^`{|}";
  constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : target) {
    auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f || kExcluded.find(c) != std::string_view::npos) {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
}

}  // namespace

std::optional<SinkAddress> parseHttpUrl(std::string_view url) {
  auto parts = core::splitHttpUrl(url);
  if (!parts || parts->https || parts->userInfo) return std::nullopt;
  SinkAddress address;
  address.host = std::string(parts->host);
  if (parts->port != 0) address.port = parts->port;
  address.authority = std::string(parts->authority);
  if (parts->target.empty() || parts->target.front() != '/') address.target = "/";
  appendTarget(address.target, parts->target);
  return address;
}

// One socket's lifetime. Freed in its close callback; `owner` is null once the connection has
// let go of it, so that late connect and write callbacks do nothing.
struct PipelineClient::Socket {
  uv_tcp_t tcp{};
  uv_connect_t connect{};
  Connection* owner = nullptr;
};

// The buffers of one writev, kept until libuv is done with them.
struct PipelineClient::WriteBatch {
  uv_write_t request{};
  Socket* socket = nullptr;
  std::vector<std::string> chunks;
  std::vector<core::SharedBytes> bodies;
  std::vector<uv_buf_t> buffers;
  ByteLease copies;  // the body bytes copied into `chunks`
};

// Answers are parsed by core's binding of llhttp; only their status, framing and keep-alive
// matter. Most answers are not parsed at all (skipKnownAnswer).
struct PipelineClient::Connection final : private core::HttpParser::Delegate {
  struct Held {
    Delivery delivery;
    uint64_t since = 0;  // uv_now when it was taken: its attempt started then
  };

  Connection(PipelineClient& owner, uv_loop_s* loop) : client(owner), deadline(loop) {}

  bool busy() const { return socket != nullptr || resolving != 0; }
  bool inMessage() const { return parser && parser->inMessage(); }

  void startParser() {
    parser.emplace(HTTP_RESPONSE, static_cast<core::HttpParser::Delegate&>(*this), kAnswerLimits);
  }

  // core::HttpParser::Delegate: parsing stops after each answer, so that it is settled before
  // the next one is read.
  bool onParsedHead() override { return false; }
  void onParsedBody(const char*, size_t) override {}
  bool onParsedMessageComplete() override {
    status = parser->response().status;
    keepAlive = parser->keepAlive();
    return true;
  }

  PipelineClient& client;
  Socket* socket = nullptr;
  uint64_t resolving = 0;                   // the resolver's id while the sink's name is looked up
  std::vector<sockaddr_storage> addresses;  // of the sink, for this connection's attempts
  size_t nextAddress = 0;
  bool open = false;  // connected; before that it holds one event only
  std::deque<Held, core::RecyclingAllocator<Held>> held;
  size_t written = 0;       // the first `written` held events were handed to the socket
  uint64_t answered = 0;    // answers on the current socket
  uint64_t lastAnswer = 0;  // loop time of the last answer on the current socket
  std::optional<core::HttpParser> parser;  // made anew for each socket
  long status = 0;                         // of the last complete answer
  bool keepAlive = true;
  core::Timer deadline;
  bool deadlineArmed = false;
};

PipelineClient::PipelineClient(uv_loop_s* loop, Options options, const EventFormat& format,
                               Take take, Done done)
    : loop_(loop),
      options_(std::move(options)),
      take_(std::move(take)),
      done_(std::move(done)),
      format_(format),
      flushTimer_(loop),
      redialTimer_(loop),
      readBuffer_(kReadBufferBytes),
      resolver_(loop) {
  ignoreSigpipe();
  prefix_ = "POST " + options_.sink.target + " HTTP/1.1\r\nHost: " + options_.sink.authority +
            "\r\nUser-Agent: " + options_.userAgent + "\r\n";
  sockaddr_storage address{};
  if (options_.addresses.empty() && (uv_ip4_addr(options_.sink.host.c_str(), options_.sink.port,
                                                 reinterpret_cast<sockaddr_in*>(&address)) == 0 ||
                                     uv_ip6_addr(options_.sink.host.c_str(), options_.sink.port,
                                                 reinterpret_cast<sockaddr_in6*>(&address)) == 0)) {
    options_.addresses.push_back(address);
  }
  int connections = std::max(options_.connections, 1);
  for (int i = 0; i < connections; ++i)
    connections_.push_back(std::make_unique<Connection>(*this, loop));
}

PipelineClient::~PipelineClient() {
  for (auto& connection : connections_)
    closeSocket(*connection);
}

void PipelineClient::wake() {
  if (flushArmed_) return;
  flushArmed_ = true;
  uint64_t now = uv_now(loop_);
  uint64_t due = lastFlush_ + static_cast<uint64_t>(kMinFlushInterval.count());
  flushTimer_.start(std::chrono::milliseconds(due > now ? due - now : 0), [this] {
    flushArmed_ = false;
    lastFlush_ = uv_now(loop_);
    flush();
  });
}

std::vector<Delivery> PipelineClient::abandon() {
  std::vector<Delivery> deliveries;
  for (auto& connection : connections_) {
    closeSocket(*connection);
    for (auto& held : connection->held)
      deliveries.push_back(std::move(held.delivery));
    connection->held.clear();
  }
  held_ = 0;
  flushTimer_.stop();
  flushArmed_ = false;
  redialTimer_.stop();
  return deliveries;
}

bool PipelineClient::fill(Connection& c, size_t cap, uint64_t now) {
  while (c.held.size() < cap) {
    auto delivery = take_();
    if (!delivery) return false;
    c.held.push_back({std::move(*delivery), now});
    ++held_;
  }
  return true;
}

void PipelineClient::flush() {
  uint64_t now = uv_now(loop_);
  const size_t cap = oneAtATime_ ? 1 : options_.depth;
  const bool canOpenMore =
      now >= redialNotBefore_ &&
      std::any_of(connections_.begin(), connections_.end(),
                  [](const std::unique_ptr<Connection>& c) { return !c->open; });
  // Open connections are filled in order: few connections with long pipelines cost the least
  // (each write wakes the sink). One whose oldest event has waited kSlowAnswerMs for its answer
  // is passed over while another connection can take events: a sink that answers a pipeline one
  // event at a time (as most servers do) gets the load spread over `--workers` connections
  // instead of queued on one.
  std::vector<Connection*> open;
  std::vector<Connection*> slow;
  for (auto& connection : connections_) {
    Connection& c = *connection;
    if (!c.open) continue;
    open.push_back(&c);
    if (!c.held.empty() && now - c.held.front().since >= kSlowAnswerMs) {
      slow.push_back(&c);
    } else {
      fill(c, cap, now);
    }
  }
  // Every connection is open and the rest are slow: the least loaded take what is left.
  while (!canOpenMore && !slow.empty()) {
    Connection* target = *std::min_element(
        slow.begin(), slow.end(),
        [](const Connection* a, const Connection* b) { return a->held.size() < b->held.size(); });
    if (target->held.size() >= cap || !fill(*target, target->held.size() + 1, now)) break;
  }
  for (Connection* c : open) {
    armDeadline(*c);
    write(*c);
  }
  // What is left opens more connections, one event each until connected.
  for (auto& connection : connections_) {
    Connection& c = *connection;
    if (c.busy()) continue;
    if (now < redialNotBefore_) {
      redialTimer_.start(std::chrono::milliseconds(redialNotBefore_ - now), [this] { wake(); });
      return;
    }
    if (!fill(c, c.held.size() + 1, now)) return;
    armDeadline(c);
    dial(c);
  }
}

void PipelineClient::dial(Connection& c) {
  c.nextAddress = 0;
  if (!options_.addresses.empty()) {
    c.addresses = options_.addresses;
    connectNext(c);
    return;
  }
  uint64_t id = resolver_.resolve(options_.sink.host, options_.sink.port,
                                  [this, &c](int status, const core::Addresses& addresses) {
                                    c.resolving = 0;
                                    if (status < 0) {
                                      end(c, Ending::Closed,
                                          uvError("cannot resolve the sink's host", status));
                                      return;
                                    }
                                    c.addresses = addresses;
                                    connectNext(c);
                                  });
  // A name already known answered at once; only a lookup still running has an id.
  if (id != 0 && c.socket == nullptr) c.resolving = id;
}

void PipelineClient::connectNext(Connection& c) {
  const sockaddr_storage& address = c.addresses[c.nextAddress++];
  auto* socket = new Socket;
  socket->owner = &c;
  socket->tcp.data = socket;
  socket->connect.data = socket;
  int status = uv_tcp_init(loop_, &socket->tcp);
  if (status < 0) {
    // A handle that failed to initialise was never registered with the loop.
    delete socket;
    end(c, Ending::Closed, uvError("cannot create a socket", status));
    return;
  }
  c.socket = socket;
  ++connectionsOpened_;
  status =
      uv_tcp_connect(&socket->connect, &socket->tcp, reinterpret_cast<const sockaddr*>(&address),
                     [](uv_connect_t* request, int result) {
                       auto* s = static_cast<Socket*>(request->data);
                       if (s->owner != nullptr) s->owner->client.onConnected(*s->owner, result);
                     });
  if (status < 0) end(c, Ending::Closed, uvError("cannot connect to the sink", status));
}

void PipelineClient::onConnected(Connection& c, int status) {
  if (status < 0 && c.nextAddress < c.addresses.size()) {
    // Refused or unreachable there: the next address, within the same deadline.
    closeSocket(c);
    armDeadline(c);
    connectNext(c);
    return;
  }
  if (status < 0) {
    end(c, Ending::Closed, uvError("cannot connect to the sink", status));
    return;
  }
  c.open = true;
  c.startParser();
  auto* stream = reinterpret_cast<uv_stream_t*>(&c.socket->tcp);
  uv_tcp_nodelay(&c.socket->tcp, 1);
  status = uv_read_start(
      stream,
      [](uv_handle_t* handle, size_t, uv_buf_t* buffer) {
        auto* s = static_cast<Socket*>(handle->data);
        auto& bytes = s->owner->client.readBuffer_;
        *buffer = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
      },
      [](uv_stream_t* handle, ssize_t nread, const uv_buf_t* buffer) {
        auto* s = static_cast<Socket*>(handle->data);
        if (s->owner == nullptr || nread == 0) return;
        Connection& connection = *s->owner;
        if (nread > 0) {
          connection.client.onRead(connection, buffer->base, static_cast<size_t>(nread));
        } else if (nread == UV_EOF) {
          connection.client.onEof(connection);
        } else {
          connection.client.end(connection, Ending::Closed,
                                uvError("connection to the sink", static_cast<int>(nread)));
        }
      });
  if (status < 0) {
    end(c, Ending::Closed, uvError("cannot read from the sink", status));
    return;
  }
  write(c);
  wake();
}

void PipelineClient::serialize(const Event& event, std::string& out) const {
  out += prefix_;
  format_.appendHeaders(event.record, out);
  out += "Content-Length: "sv;
  char digits[24];
  auto [end, error] = std::to_chars(digits, digits + sizeof digits, event.body.size());
  out.append(digits, end);
  out += "\r\n\r\n"sv;
}

void PipelineClient::write(Connection& c) {
  if (!c.open || c.written == c.held.size()) return;
  auto batch = std::make_unique<WriteBatch>();
  // Pieces in order: a chunk (heads and small bodies) or a large body, by index.
  std::vector<std::pair<bool, size_t>> pieces;
  std::string chunk;
  // One allocation for the heads and small bodies of the batch, instead of one per doubling.
  size_t estimate = 0;
  for (size_t i = c.written; i < c.held.size(); ++i) {
    const Event& event = *c.held[i].delivery.event;
    size_t size = event.body.size();
    estimate += prefix_.size() + kHeadEstimate + (size <= kInlineBody ? size : 0);
  }
  chunk.reserve(estimate);
  size_t copied = 0;
  for (size_t i = c.written; i < c.held.size(); ++i) {
    const Event& event = *c.held[i].delivery.event;
    serialize(event, chunk);
    size_t size = event.body.size();
    if (size <= kInlineBody) {
      if (size > 0) chunk += event.body.view();
      copied += size;
      continue;
    }
    batch->chunks.push_back(std::exchange(chunk, {}));
    pieces.emplace_back(false, batch->chunks.size() - 1);
    batch->bodies.push_back(event.body);
    pieces.emplace_back(true, batch->bodies.size() - 1);
  }
  if (!chunk.empty()) {
    batch->chunks.push_back(std::move(chunk));
    pieces.emplace_back(false, batch->chunks.size() - 1);
  }
  for (const auto& [body, index] : pieces) {
    std::string_view bytes = body ? batch->bodies[index].view() : batch->chunks[index];
    batch->buffers.push_back(
        uv_buf_init(const_cast<char*>(bytes.data()), static_cast<unsigned>(bytes.size())));
  }
  if (copied > 0 && options_.budget) {
    batch->copies = ByteLease(options_.budget);
    batch->copies.hold(copied);
  }
  c.written = c.held.size();
  batch->socket = c.socket;
  batch->request.data = batch.get();
  int status = uv_write(
      &batch->request, reinterpret_cast<uv_stream_t*>(&c.socket->tcp), batch->buffers.data(),
      static_cast<unsigned>(batch->buffers.size()), [](uv_write_t* request, int result) {
        std::unique_ptr<WriteBatch> done(static_cast<WriteBatch*>(request->data));
        Connection* owner = done->socket->owner;
        if (result < 0 && owner != nullptr) {
          owner->client.end(*owner, Ending::Closed, uvError("cannot write to the sink", result));
        }
      });
  if (status < 0) {
    end(c, Ending::Closed, uvError("cannot write to the sink", status));
    return;
  }
  batch.release();
}

bool PipelineClient::skipKnownAnswer(Connection& c, const char*& position, const char* last) {
  if (c.inMessage() || knownAnswer_.empty() ||
      static_cast<size_t>(last - position) < knownAnswer_.size() ||
      std::memcmp(position, knownAnswer_.data(), knownAnswer_.size()) != 0) {
    return false;
  }
  position += knownAnswer_.size();
  c.status = knownStatus_;
  c.keepAlive = true;
  return true;
}

void PipelineClient::onRead(Connection& c, const char* data, size_t length) {
  const char* position = data;
  const char* last = data + length;
  while (position < last) {
    if (!skipKnownAnswer(c, position, last)) {
      const char* start = c.inMessage() ? nullptr : position;
      core::HttpParser::Result parsed =
          c.parser->execute(position, static_cast<size_t>(last - position));
      if (parsed.status == core::HttpParser::Status::Ok) break;
      if (parsed.status != core::HttpParser::Status::Paused) {
        end(c, Ending::Closed,
            std::string("malformed answer from the sink: ") +
                (parsed.status == core::HttpParser::Status::Upgrade ? "an upgrade"
                                                                    : parsed.reason));
        return;
      }
      position += parsed.consumed;
      c.parser->resume();
      // A whole final keep-alive answer parsed from a message boundary: the same bytes there
      // again make the same answer, so the next one like it is recognised without llhttp.
      size_t size = start == nullptr ? 0 : static_cast<size_t>(position - start);
      if (size > 0 && size <= kKnownAnswerBytes && c.status >= 200 && c.keepAlive) {
        knownAnswer_.assign(start, size);
        knownStatus_ = c.status;
      }
    }
    if (c.status < 200) continue;  // an interim answer
    if (c.written == 0) {
      end(c, Ending::Closed, "an answer from the sink to no request");
      return;
    }
    answer(c, c.status);
    if (!c.keepAlive) {
      end(c, Ending::Closed, "the sink closed the connection");
      return;
    }
  }
  wake();
}

void PipelineClient::onEof(Connection& c) {
  // An answer without a length ends with the connection.
  if (c.inMessage() && c.parser->finish().status == core::HttpParser::Status::Paused &&
      c.status >= 200 && c.written > 0) {
    answer(c, c.status);
  }
  end(c, Ending::Closed, "the sink closed the connection");
}

void PipelineClient::answer(Connection& c, long status) {
  Delivery delivery = std::move(c.held.front().delivery);
  c.held.pop_front();
  --c.written;
  ++c.answered;
  c.lastAnswer = uv_now(loop_);
  // A sink that closes after each answer (Connection: close, HTTP/1.0, or a body ended by the
  // close) would make every event behind the first go out again: it gets one event per
  // connection until it keeps one open.
  oneAtATime_ = !c.keepAlive;
  --held_;
  failuresInRow_ = 0;
  PipelineResult result;
  result.status = status;
  done_(std::move(delivery), std::move(result));
}

// The timeout bounds the sink's silence: the oldest event on a connection fails once the sink
// has answered nothing on it for that long since the event was taken. Waiting behind earlier
// events the sink is answering is progress, not a failure.
uint64_t PipelineClient::deadlineOf(const Connection& c) const {
  return std::max(c.held.front().since, c.lastAnswer) +
         static_cast<uint64_t>(options_.timeout.count());
}

void PipelineClient::armDeadline(Connection& c) {
  if (options_.timeout.count() <= 0 || c.deadlineArmed || c.held.empty()) return;
  c.deadlineArmed = true;
  uint64_t due = deadlineOf(c);
  uint64_t now = uv_now(loop_);
  c.deadline.start(std::chrono::milliseconds(due > now ? due - now : 0), [this, &c] {
    c.deadlineArmed = false;
    checkDeadline(c);
  });
}

void PipelineClient::checkDeadline(Connection& c) {
  if (c.held.empty()) return;
  if (uv_now(loop_) >= deadlineOf(c)) {
    end(c, Ending::TimedOut,
        "no answer from the sink within " + std::to_string(options_.timeout.count()) + " ms");
    return;
  }
  armDeadline(c);
}

void PipelineClient::end(Connection& c, Ending ending, const std::string& error) {
  bool partial = c.inMessage();
  uint64_t answered = c.answered;
  closeSocket(c);
  auto held = std::exchange(c.held, {});
  held_ -= held.size();
  if (answered == 0 && !held.empty()) {
    ++failuresInRow_;
    auto pause = options_.backoff.delay(failuresInRow_);
    redialNotBefore_ = uv_now(loop_) + static_cast<uint64_t>(pause.count());
  }
  for (size_t i = 0; i < held.size(); ++i) {
    PipelineResult result;
    result.error = error;
    result.unanswered = ending == Ending::Closed && answered > 0 && !(i == 0 && partial);
    done_(std::move(held[i].delivery), std::move(result));
  }
  wake();
}

void PipelineClient::closeSocket(Connection& c) {
  if (c.resolving != 0) {
    resolver_.cancel(c.resolving);
    c.resolving = 0;
  }
  if (c.socket != nullptr) {
    Socket* socket = std::exchange(c.socket, nullptr);
    socket->owner = nullptr;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&socket->tcp));
    uv_close(reinterpret_cast<uv_handle_t*>(&socket->tcp),
             [](uv_handle_t* handle) { delete static_cast<Socket*>(handle->data); });
  }
  c.open = false;
  c.written = 0;
  c.answered = 0;
  c.lastAnswer = 0;
  c.parser.reset();
  c.keepAlive = true;
  c.deadline.stop();
  c.deadlineArmed = false;
}

}  // namespace logger
