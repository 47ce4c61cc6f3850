#include "core/server/server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/http/parser.h"
#include "core/util/assert.h"
#include "core/util/recycle.h"

namespace core {

using namespace std::string_view_literals;

namespace {

// Request bytes held unparsed: pipelined requests read ahead while a response is pending.
constexpr size_t kMaxReadAhead = 64 * 1024;
// Request body bytes discarded after an early answer before the connection is closed instead.
constexpr size_t kMaxDiscard = 256 * 1024;

std::atomic<uint64_t> nextExchangeId{1};

// How long a closing connection keeps reading (and dropping) what the client still sends, so
// that the close does not reset the connection before the client has read the answer.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kMaxLingerBytes = 1 << 20;

enum class Framing { None, Length, Chunked, Close };

std::string peerAddress(uv_tcp_t* tcp) {
  sockaddr_storage storage{};
  int length = sizeof storage;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return "";
  char text[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    uv_ip4_name(reinterpret_cast<sockaddr_in*>(&storage), text, sizeof text);
  } else {
    uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&storage), text, sizeof text);
  }
  std::string address = text;
  if (address.rfind("::ffff:", 0) == 0 && address.find('.') != std::string::npos) {
    address.erase(0, 7);
  }
  return address;
}

}  // namespace

class ExchangeImpl;

// One client connection: parses requests, runs one exchange at a time (pipelined requests wait
// their turn, so answers keep their order), writes responses with the framing they need.
class ClientConnection final : public Connection, private HttpParser::Delegate {
 public:
  ClientConnection(ServerContext& context, Kind kind)
      : Connection(context.loop, kind),
        context_(context),
        parser_(HTTP_REQUEST, *this,
                ParserLimits{context.limits.maxHeaderBytes, context.limits.maxHeaderCount}),
        mayBeH2_(context.terminal.takesH2()) {
    ++context_.stats.connectionsOpen;
    context_.clients.insert(this);
  }

  void start() {
    if (kind() == Kind::Tcp) {
      uv_tcp_nodelay(tcp(), 1);
      clientAddress_ = peerAddress(tcp());
    }
    armIdle();
    startReading();
  }

  // Response writing, used by the current exchange.
  void writeResponseHead(const ResponseHead& head, Framing framing, bool closeAfter);
  void writeResponseBody(const char* data, size_t length);
  // `trailers`: the trailer fields to send after a chunked body, if any.
  void endResponse(const Headers* trailers = nullptr);
  // The current exchange failed after its response started: the client cannot get a valid
  // message any more, so the connection closes.
  void abortResponse() { close(); }
  // Request-body backpressure from the upstream side.
  // While the agent holds the body back, the client is not stalling: the body timer waits.
  void pauseBody() {
    bodyPaused_ = true;
    if (timer_ == TimerKind::Body) cancelTimer();
    updateReading();
  }
  void resumeBody() {
    bodyPaused_ = false;
    if (timer_ == TimerKind::Body) armTimer(context_.limits.headerTimeout);
    updateReading();
  }
  void writeContinue() { write("HTTP/1.1 100 Continue\r\n\r\n"); }
  // After a 101 response: raw bytes in both directions.
  void startTunnel();
  void tunnelWrite(const char* data, size_t length) { write(std::string_view(data, length)); }
  // The model server closed its side of the tunnel: what it sent is delivered, then the
  // connection ends.
  void endTunnel() { closeWhenFlushed(); }
  const std::string& clientAddress() const { return clientAddress_; }
  bool closeAfterExchange() const { return closeAfter_; }
  void idleClose() {
    if (current_ || !parser_.idle() || !pending_.empty()) return;
    if (unsentBytes() > 0) {
      closeWhenFlushed();
    } else {
      close();
    }
  }
  bool busy() const { return !h2Tunnel_ && (current_ != nullptr || !parser_.idle()); }
  bool writing() const { return !closing() && unsentBytes() > 0; }

 private:
  ~ClientConnection() override = default;

  size_t readLimit() const override;
  void onData(const char* data, size_t length) override;
  void onReadEnd(int status) override;
  void onWriteDrained() override;
  void onTimeout() override;
  void onClosed() override;
  bool onParsedHead() override;
  void onParsedBody(const char* data, size_t length) override;
  bool onParsedMessageComplete() override;

  void parse(const char* data, size_t length);
  // While the connection's first bytes may be the HTTP/2 preface: false when they were held
  // or the connection became an HTTP/2 tunnel, true when they are HTTP/1 to parse.
  bool checkH2Preface(const char* data, size_t length);
  void resumeParsing();
  void finishExchange();
  void updateReading();
  void rejectRequest(int status, const std::string& reason);
  void closeWhenFlushed();
  void armIdle();

  enum class TimerKind { None, Idle, Header, Body, Write, Linger };
  void lingerClose();

  ServerContext& context_;
  HttpParser parser_;
  std::shared_ptr<ExchangeImpl> current_;
  std::string pending_;
  std::string clientAddress_;
  Framing framing_ = Framing::None;
  TimerKind timer_ = TimerKind::None;
  bool inParse_ = false;
  bool paused_ = false;
  bool bodyPaused_ = false;
  bool requestComplete_ = false;
  bool responseComplete_ = false;
  bool closeAfter_ = false;
  // What the current request's head asks of the connection: kept open after the answer (for
  // HTTP/1.0 only with Connection: keep-alive), and whether it is HTTP/1.0.
  bool requestKeepAlive_ = true;
  bool requestHttp10_ = false;
  bool closeWhenFlushed_ = false;
  bool tunnel_ = false;
  bool upgradeRequest_ = false;
  bool lingering_ = false;
  bool mayBeH2_;  // nothing but a prefix of the HTTP/2 preface was read so far
  bool h2Tunnel_ = false;
  std::string h2Held_;  // that prefix
  size_t discarded_ = 0;
  uv_shutdown_t shutdown_;
};

// One request and its response: runs the chain, then the terminal, and writes what either
// answers to the client.
class ExchangeImpl final : public Downstream,
                           private ChainCallbacks,
                           public std::enable_shared_from_this<ExchangeImpl> {
 public:
  ExchangeImpl(ServerContext& context, ClientConnection* client, RequestHead head, bool chunkedBody,
               std::optional<uint64_t> contentLength, bool upgrade)
      : context_(context),
        client_(client),
        request_(std::move(head)),
        clientAddress_(client->clientAddress()),
        id_(nextExchangeId.fetch_add(1, std::memory_order_relaxed)),
        startTime_(std::chrono::system_clock::now()),
        startClock_(std::chrono::steady_clock::now()),
        run_(context.chain, *this, context.limits.maxBufferedBodyBytes),
        chunkedBody_(chunkedBody),
        hasBody_(chunkedBody || contentLength.value_or(0) > 0),
        upgrade_(upgrade),
        declaredTooLarge_(contentLength.value_or(0) > context.limits.maxRequestBodyBytes) {
    ++context_.stats.exchangesInFlight;
  }
  ~ExchangeImpl() override {
    recycleHead(request_);
    recycleHead(response_);
  }

  // Exchange
  const RequestHead& request() const override { return request_; }
  RequestHead& mutableRequest() override { return request_; }
  const std::string& clientAddress() const override { return clientAddress_; }
  const ResponseHead* response() const override { return responseStarted_ ? &response_ : nullptr; }
  uint64_t id() const override { return id_; }
  std::chrono::system_clock::time_point startTime() const override { return startTime_; }
  bool finished() const override { return done_; }
  bool requestReceived() const override { return requestComplete_ || run_.bodyBuffered(); }
  void reply(ResponseHead head, std::string body) override;

  // Downstream
  bool chunkedBody() const override { return chunkedBody_; }
  bool hasBody() const override { return hasBody_; }
  bool upgrade() const override { return upgrade_; }
  std::string* bufferedBody() override { return run_.bodyBuffered() ? &run_.body() : nullptr; }
  const Headers& requestTrailers() const override { return requestTrailers_; }
  bool responseStarted() const override { return responseStarted_; }
  void sendResponseHead(ResponseHead& head, std::string trailerAnnouncement,
                        bool switching) override;
  bool sendResponseBody(const char* data, size_t length) override;
  void endResponse(const Headers& trailers) override {
    if (client_ != nullptr) client_->endResponse(&trailers);
  }
  void abortResponse() override {
    if (client_ != nullptr) client_->abortResponse();
  }
  void pauseRequestBody() override {
    if (client_ != nullptr) client_->pauseBody();
  }
  void resumeRequestBody() override {
    if (client_ != nullptr) client_->resumeBody();
  }
  void tunnelWrite(const char* data, size_t length) override {
    if (client_ != nullptr) client_->tunnelWrite(data, length);
  }
  void endTunnel() override {
    if (client_ != nullptr) client_->endTunnel();
  }

  // The Content-Length is over the request body limit.
  bool declaredTooLarge() const { return declaredTooLarge_; }

  // From the client connection.
  void begin();
  void requestBody(const char* data, size_t length);
  // The request body is complete; `trailers`: its trailer fields (chunked bodies only).
  void requestEnd(const Headers& trailers = {});
  void clientGone();
  void clientDrained() {
    if (liveStream()) stream_->onDownstreamDrained();
  }
  void tunnelData(const char* data, size_t length) {
    if (liveStream()) stream_->onTunnelData(data, length);
  }
  // An HTTP/2 connection with prior knowledge (gRPC): the terminal tunnels it, `preface` first.
  void startH2(std::string preface);
  void tunnelClosed() {
    if (liveStream()) stream_->onTunnelClosed();
    finish(true);
  }
  bool upgraded() const { return tunnel_; }
  // The response was written completely and the request read completely.
  void completed() { finish(true); }

 private:
  ExchangePtr self() { return shared_from_this(); }

  // ChainCallbacks
  void onChainPassed() override {
    streamLive_ = true;
    stream_ = context_.terminal.start(*this);
  }
  void onPassBody(const char* data, size_t length) override {
    if (liveStream()) stream_->onRequestBody(data, length);
  }
  void onBufferedBodyTooLarge(size_t limit) override { replyBodyTooLarge(limit); }
  ExchangePtr exchangePtr() override { return self(); }

  bool liveStream() const { return streamLive_ && stream_ != nullptr; }
  // The terminal's stream lets go of what it holds; it stays allocated until the exchange is
  // destroyed, since this may run from inside one of its own calls.
  void cancelStream() {
    if (!streamLive_) return;
    streamLive_ = false;
    if (stream_ != nullptr) stream_->cancel();
  }
  void replyBodyTooLarge(size_t limit) {
    replyError(413, "request body larger than " + std::to_string(limit) + " bytes");
  }
  void finish(bool complete);

  ServerContext& context_;
  ClientConnection* client_;
  RequestHead request_;
  ResponseHead response_;
  std::string clientAddress_;
  uint64_t id_;
  std::chrono::system_clock::time_point startTime_;
  std::chrono::steady_clock::time_point startClock_;
  ChainRun run_;
  TerminalStreamPtr stream_;
  bool streamLive_ = false;  // the terminal has the exchange and was not cancelled
  bool chunkedBody_;
  bool hasBody_;
  bool upgrade_;
  bool requestComplete_ = false;
  bool responseStarted_ = false;
  bool tunnel_ = false;
  bool done_ = false;
  bool declaredTooLarge_;
  bool h2_ = false;
  Headers requestTrailers_;
  size_t bodyBytes_ = 0;
};

// ---------------------------------------------------------------------------------------------
// ExchangeImpl

void ExchangeImpl::begin() {
  if (declaredTooLarge_) {
    // Refused from its Content-Length: nothing is forwarded and the body is not waited for.
    replyBodyTooLarge(context_.limits.maxRequestBodyBytes);
    return;
  }
  run_.start(*this, hasBody_ && !requestComplete_);
}

void ExchangeImpl::requestBody(const char* data, size_t length) {
  bodyBytes_ += length;
  if (bodyBytes_ > context_.limits.maxRequestBodyBytes) {
    if (responseStarted_) {
      // The response started already; the rest of the body would go nowhere.
      if (client_ != nullptr) client_->abortResponse();
      return;
    }
    replyBodyTooLarge(context_.limits.maxRequestBodyBytes);
    return;
  }
  run_.requestData(*this, data, length);
}

void ExchangeImpl::requestEnd(const Headers& trailers) {
  requestComplete_ = true;
  if (!trailers.empty()) requestTrailers_ = trailers;
  if (run_.state() == ChainRun::State::Passed) {
    if (liveStream()) stream_->onRequestEnd();
  } else {
    run_.requestEnd(*this);
  }
}

void ExchangeImpl::startH2(std::string preface) {
  // As Go's h2c handler hijacks these connections, a drain does not wait for them.
  --context_.stats.exchangesInFlight;
  h2_ = true;
  tunnel_ = true;
  run_.replied();
  streamLive_ = true;
  stream_ = context_.terminal.startH2(*this, std::move(preface));
}

void ExchangeImpl::sendResponseHead(ResponseHead& head, std::string trailerAnnouncement,
                                    bool switching) {
  if (client_ == nullptr) return;
  KSA_ASSERT(!responseStarted_);
  response_ = std::move(head);
  responseStarted_ = true;
  int status = response_.status;
  Framing framing;
  bool closeAfter = client_->closeAfterExchange() || context_.draining;
  if (switching) {
    framing = Framing::None;
  } else if (request_.method == "HEAD" || status == 204 || status == 304 || status < 200) {
    framing = Framing::None;
    if (request_.method != "HEAD" || status == 204 || status == 304) {
      // What Go's server leaves out of answers that have no body (RFC 9110 §8.6, §15.4.5).
      removeHeader(response_.headers, "Content-Length");
      if (status == 304) removeHeader(response_.headers, "Content-Type");
    }
  } else if (findHeader(response_.headers, "Content-Length") != nullptr) {
    framing = Framing::Length;
  } else if (request_.versionMinor >= 1) {
    framing = Framing::Chunked;
  } else {
    framing = Framing::Close;
    closeAfter = true;
  }
  if (upgrade_ && !switching) closeAfter = true;
  // Trailers are relayed only after a chunked body; so is their announcement.
  if (framing == Framing::Chunked && !trailerAnnouncement.empty()) {
    response_.headers.push_back({"Trailer", std::move(trailerAnnouncement)});
  }
  client_->writeResponseHead(response_, framing, closeAfter);
  run_.responseHead(*this);
  if (switching && client_ != nullptr) {
    tunnel_ = true;
    client_->startTunnel();
  }
}

bool ExchangeImpl::sendResponseBody(const char* data, size_t length) {
  if (client_ == nullptr) return true;
  run_.responseData(*this, std::string_view(data, length));
  client_->writeResponseBody(data, length);
  return client_ == nullptr || client_->queuedBytes() <= kBackpressureHighWater;
}

void ExchangeImpl::reply(ResponseHead head, std::string body) {
  if (done_ || responseStarted_ || client_ == nullptr) return;
  cancelStream();
  run_.replied();
  response_ = std::move(head);
  responseStarted_ = true;
  removeHeader(response_.headers, "Transfer-Encoding");
  bool noBody = request_.method == "HEAD" || response_.status == 204 || response_.status == 304;
  if (response_.status == 204) {
    // A 204 has no length at all (RFC 9110 §8.6), whatever the head it was given says.
    removeHeader(response_.headers, "Content-Length");
  } else if (!noBody || !body.empty()) {
    setHeader(response_.headers, "Content-Length", std::to_string(body.size()));
  }
  bool closeAfter =
      client_->closeAfterExchange() || context_.draining || upgrade_ || response_.status == 413 ||
      (!requestComplete_ && hasBody_ && bodyBytes_ > kMaxDiscard) || declaredTooLarge_;
  client_->writeResponseHead(response_, noBody ? Framing::None : Framing::Length, closeAfter);
  run_.responseHead(*this);
  if (!noBody && !body.empty()) {
    run_.responseData(*this, body);
    if (client_ != nullptr) client_->writeResponseBody(body.data(), body.size());
  }
  if (client_ != nullptr) client_->endResponse();
}

void ExchangeImpl::clientGone() {
  client_ = nullptr;
  cancelStream();
  finish(false);
}

void ExchangeImpl::finish(bool complete) {
  if (done_) return;
  done_ = true;
  cancelStream();
  if (h2_) return;  // a connection, not an exchange: neither logged nor counted
  --context_.stats.exchangesInFlight;
  run_.complete(*this, complete);
  if (context_.observer != nullptr) {
    int status = responseStarted_ ? response_.status : 499;
    context_.observer->onExchangeDone(*this, complete ? status : 499,
                                      std::chrono::steady_clock::now() - startClock_);
  }
}

// ---------------------------------------------------------------------------------------------
// ClientConnection

size_t ClientConnection::readLimit() const {
  if (lingering_ || tunnel_) return SIZE_MAX;
  // Whatever a read brings beyond the message being parsed is held in pending_: a read takes
  // no more than the rest of a Content-Length body being forwarded plus the room left in
  // pending_, so that it never holds more than kMaxReadAhead bytes, however large the reads.
  size_t held = pending_.size();
  if (held >= kMaxReadAhead) return 1;
  size_t room = kMaxReadAhead - held;
  if (paused_ || held > 0) return room;
  uint64_t body = parser_.bodyBytesLeft();
  return body >= SIZE_MAX - room ? SIZE_MAX : room + static_cast<size_t>(body);
}

void ClientConnection::onData(const char* data, size_t length) {
  if (lingering_) {
    discarded_ += length;
    if (discarded_ > kMaxLingerBytes) close();
    return;
  }
  if (timer_ == TimerKind::Body) armTimer(context_.limits.headerTimeout);
  if (tunnel_) {
    if (current_) current_->tunnelData(data, length);
    return;
  }
  if (mayBeH2_ && !checkH2Preface(data, length)) return;
  if (paused_ || !pending_.empty()) {
    pending_.append(data, length);
    updateReading();
    return;
  }
  if (timer_ == TimerKind::Idle) {
    timer_ = TimerKind::Header;
    armTimer(context_.limits.headerTimeout);
  }
  parse(data, length);
}

bool ClientConnection::checkH2Preface(const char* data, size_t length) {
  // RFC 9113 §3.4: a client that knows the server speaks HTTP/2 starts with this.
  static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  size_t held = h2Held_.size();
  size_t compared = std::min(length, kPreface.size() - held);
  if (std::memcmp(data, kPreface.data() + held, compared) != 0) {
    mayBeH2_ = false;
    if (held == 0) return true;
    std::string bytes = std::exchange(h2Held_, {});
    bytes.append(data, length);
    onData(bytes.data(), bytes.size());
    return false;
  }
  h2Held_.append(data, length);
  if (h2Held_.size() < kPreface.size()) return false;
  mayBeH2_ = false;
  RequestHead head;
  head.method = "PRI";
  head.target = "*";
  current_ = std::allocate_shared<ExchangeImpl>(RecyclingAllocator<ExchangeImpl>(), context_, this,
                                                std::move(head), false, std::nullopt, true);
  upgradeRequest_ = true;
  h2Tunnel_ = true;
  auto exchange = current_;
  exchange->startH2(std::exchange(h2Held_, {}));
  if (current_ == exchange && !closing()) startTunnel();
  return false;
}

void ClientConnection::parse(const char* data, size_t length) {
  inParse_ = true;
  HttpParser::Result result = parser_.execute(data, length);
  inParse_ = false;
  if (closing()) return;
  switch (result.status) {
    case HttpParser::Status::Ok:
      break;
    case HttpParser::Status::Paused:
    case HttpParser::Status::Upgrade:
      paused_ = true;
      pending_.append(data + result.consumed, length - result.consumed);
      if (tunnel_) {
        // The 101 arrived while parsing: the rest is already tunnel data.
        paused_ = false;
        std::string rest = std::move(pending_);
        pending_.clear();
        if (current_ && !rest.empty()) current_->tunnelData(rest.data(), rest.size());
      }
      break;
    case HttpParser::Status::Error:
      rejectRequest(result.errorStatus, result.reason);
      break;
  }
  updateReading();
}

void ClientConnection::rejectRequest(int status, const std::string& reason) {
  spdlog::debug("rejecting request from {}: {}", clientAddress_, reason);
  if (current_) {
    if (current_->response() == nullptr) {
      // Answered with Connection: close; the connection ends once the answer is out, lingering
      // so that what the client still sends does not reset it before the client reads it.
      closeAfter_ = true;
      auto exchange = current_;
      exchange->replyError(status, reason);
      if (!current_) return;
    }
    auto exchange = std::move(current_);
    exchange->clientGone();
    close();
    return;
  }
  std::string body = reason + "\n";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reasonPhrase(status)) +
                    "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: "
                    "nosniff\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  write(out);
  closeAfter_ = true;
  closeWhenFlushed();
}

bool ClientConnection::onParsedHead() {
  cancelTimer();
  timer_ = TimerKind::None;
  requestComplete_ = false;
  responseComplete_ = false;
  framing_ = Framing::None;
  discarded_ = 0;
  RequestHead head = std::move(parser_.request());
  upgradeRequest_ = parser_.upgrade();
  requestKeepAlive_ = parser_.keepAlive();
  requestHttp10_ = head.versionMinor == 0;
  if (context_.draining) closeAfter_ = true;
  bool expectsContinue = false;
  if (const std::string* expect = findHeader(head.headers, "Expect"); expect != nullptr) {
    expectsContinue = iequals(*expect, "100-continue") && head.versionMinor >= 1;
  }
  bool chunked = parser_.chunked();
  std::optional<uint64_t> length = parser_.contentLength();
  current_ = std::allocate_shared<ExchangeImpl>(RecyclingAllocator<ExchangeImpl>(), context_, this,
                                                std::move(head), chunked, length, upgradeRequest_);
  bool hasBody = chunked || length.value_or(0) > 0;
  // A body over the limit by its Content-Length is refused before the client sends it.
  if (expectsContinue && hasBody && !current_->declaredTooLarge()) {
    writeContinue();
  }
  if (hasBody) {
    // A body that stops arriving must not hold the connection (and a model-server connection).
    timer_ = TimerKind::Body;
    armTimer(context_.limits.headerTimeout);
  }
  auto exchange = current_;
  exchange->begin();
  return false;
}

void ClientConnection::onParsedBody(const char* data, size_t length) {
  if (!current_) return;
  if (responseComplete_) {
    // Answered early: the rest of the body is read and dropped, up to a bound.
    discarded_ += length;
    if (discarded_ > kMaxDiscard) {
      // Too much to drop politely: the connection ends once the answer is out.
      closeAfter_ = true;
      finishExchange();
    }
    return;
  }
  auto exchange = current_;
  exchange->requestBody(data, length);
}

bool ClientConnection::onParsedMessageComplete() {
  if (timer_ == TimerKind::Body) {
    cancelTimer();
    timer_ = TimerKind::None;
  }
  if (!parser_.keepAlive()) closeAfter_ = true;
  requestComplete_ = true;
  if (current_ && !responseComplete_) {
    auto exchange = current_;
    exchange->requestEnd(parser_.trailers());
  }
  if (closing()) return true;
  if (responseComplete_ && !upgradeRequest_) {
    finishExchange();
    return closeAfter_;
  }
  return true;
}

void ClientConnection::writeResponseHead(const ResponseHead& head, Framing framing,
                                         bool closeAfter) {
  if (closeAfter) closeAfter_ = true;
  framing_ = framing;
  ScratchString scratch;
  std::string& out = *scratch;
  out.reserve(128 + head.headers.size() * 48);
  out += "HTTP/1.1 "sv;
  out += std::to_string(head.status);
  out += ' ';
  out += head.reason.empty() ? reasonPhrase(head.status) : std::string_view(head.reason);
  out += "\r\n"sv;
  appendHeaderLines(out, head.headers);
  if (framing == Framing::Chunked) out += "Transfer-Encoding: chunked\r\n"sv;
  if (head.status != 101) {
    // The client learns whether the connection stays open (RFC 9112 §9.3): an HTTP/1.0 client
    // keeps it only when told so, and waits for the close otherwise.
    if (closeAfter_ || !requestKeepAlive_) {
      out += "Connection: close\r\n"sv;
    } else if (requestHttp10_) {
      out += "Connection: keep-alive\r\n"sv;
    }
  }
  out += "\r\n"sv;
  write(out);
  if (queuedBytes() > 0 && timer_ != TimerKind::Write) {
    timer_ = TimerKind::Write;
    armTimer(context_.limits.writeTimeout);
  }
}

void ClientConnection::writeResponseBody(const char* data, size_t length) {
  if (length == 0) return;
  if (framing_ == Framing::Chunked) {
    char sizeLine[24];
    int n = std::snprintf(sizeLine, sizeof sizeLine, "%zx\r\n", length);
    uv_buf_t buffers[3] = {uv_buf_init(sizeLine, static_cast<unsigned>(n)),
                           uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(length)),
                           uv_buf_init(const_cast<char*>("\r\n"), 2)};
    write(buffers, 3);
  } else if (framing_ != Framing::None) {
    write(std::string_view(data, length));
  }
  if (queuedBytes() > 0 && timer_ != TimerKind::Write) {
    timer_ = TimerKind::Write;
    armTimer(context_.limits.writeTimeout);
  }
}

void ClientConnection::endResponse(const Headers* trailers) {
  if (framing_ == Framing::Chunked && trailers != nullptr && !trailers->empty()) {
    ScratchString scratch;
    appendLastChunk(*scratch, *trailers);
    write(*scratch);
  } else if (framing_ == Framing::Chunked) {
    write("0\r\n\r\n");
  }
  responseComplete_ = true;
  if (upgradeRequest_ && current_ && !current_->upgraded()) {
    // The model server refused the upgrade: the connection ends with this response.
    closeAfter_ = true;
    finishExchange();
  } else if (requestComplete_ && !inParse_ && !upgradeRequest_) {
    finishExchange();
    if (!closing()) resumeParsing();
  } else if (!requestComplete_ && closeAfter_) {
    // Answered before the request body ended (413, for one): the rest of the body is not
    // read as HTTP; the connection closes once the answer is out.
    finishExchange();
  }
}

void ClientConnection::finishExchange() {
  std::shared_ptr<ExchangeImpl> exchange = std::move(current_);
  current_.reset();
  if (exchange) exchange->completed();
  if (closeAfter_) {
    closeWhenFlushed();
    return;
  }
  armIdle();
}

void ClientConnection::resumeParsing() {
  if (!paused_) {
    updateReading();
    return;
  }
  paused_ = false;
  parser_.resume();
  std::string data = std::move(pending_);
  pending_.clear();
  if (!data.empty()) {
    if (timer_ == TimerKind::Idle) {
      timer_ = TimerKind::Header;
      armTimer(context_.limits.headerTimeout);
    }
    parse(data.data(), data.size());
  } else {
    updateReading();
  }
}

void ClientConnection::updateReading() {
  if (closing()) return;
  bool want = lingering_ || (!bodyPaused_ && !closeWhenFlushed_ && pending_.size() < kMaxReadAhead);
  if (want) {
    startReading();
  } else {
    stopReading();
  }
}

void ClientConnection::startTunnel() {
  tunnel_ = true;
  cancelTimer();
  timer_ = TimerKind::None;
  paused_ = false;
  std::string rest = std::move(pending_);
  pending_.clear();
  if (current_ && !rest.empty()) current_->tunnelData(rest.data(), rest.size());
  updateReading();
}

void ClientConnection::closeWhenFlushed() {
  closeWhenFlushed_ = true;
  stopReading();
  if (unsentBytes() == 0) lingerClose();
}

void ClientConnection::lingerClose() {
  if (lingering_ || closing()) return;
  lingering_ = true;
  discarded_ = 0;
  if (uv_shutdown(&shutdown_, stream(), [](uv_shutdown_t*, int) {}) != 0) {
    close();
    return;
  }
  timer_ = TimerKind::Linger;
  armTimer(kLingerTime);
  updateReading();
}

void ClientConnection::armIdle() {
  timer_ = TimerKind::Idle;
  armTimer(context_.limits.idleTimeout);
}

void ClientConnection::onReadEnd(int status) {
  (void)status;
  if (tunnel_ && current_) {
    auto exchange = std::move(current_);
    exchange->tunnelClosed();
  }
  close();
}

void ClientConnection::onWriteDrained() {
  if (closeWhenFlushed_) {
    lingerClose();
  } else {
    if (timer_ == TimerKind::Write) {
      cancelTimer();
      timer_ = TimerKind::None;
      if (!current_) {
        armIdle();
      } else if (!requestComplete_) {
        // Answered before the upload ended: the rest of the body is still bounded in time.
        timer_ = TimerKind::Body;
        armTimer(context_.limits.headerTimeout);
      }
    }
    if (current_) current_->clientDrained();
  }
  if (context_.draining && context_.observer != nullptr) context_.observer->onClientSettled();
}

void ClientConnection::onTimeout() {
  switch (timer_) {
    case TimerKind::Header:
      spdlog::debug("request head from {} not complete in time", clientAddress_);
      rejectRequest(408, "request head not received in time");
      break;
    case TimerKind::Body:
      spdlog::debug("request body from {} stalled", clientAddress_);
      rejectRequest(408, "request body not received in time");
      break;
    case TimerKind::Write:
      spdlog::debug("client {} stopped reading its response", clientAddress_);
      close();
      break;
    default:
      close();
      break;
  }
}

void ClientConnection::onClosed() {
  if (current_) {
    auto exchange = std::move(current_);
    exchange->clientGone();
  }
  --context_.stats.connectionsOpen;
  context_.clients.erase(this);
  if (context_.draining && context_.observer != nullptr) context_.observer->onClientSettled();
  delete this;
}

// ---------------------------------------------------------------------------------------------
// ServerContext and Listener

ServerContext::ServerContext(const ServerLimits& serverLimits, uv_loop_t* l, Terminal& end,
                             size_t connectionLimit)
    : limits(serverLimits), loop(l), maxConnections(connectionLimit), terminal(end) {}

Listener::Listener(ServerContext& context) : context_(context) {}

Listener::~Listener() {
  close();
}

int Listener::listenTcp(uint16_t port, bool reusePort) {
  auto* handle = new uv_tcp_t;
  uv_tcp_init_ex(context_.loop, handle, AF_INET6);
  handle->data = this;
  sockaddr_in6 addr6{};
  uv_ip6_addr("::", port, &addr6);
  int fd = -1;
  uv_fileno(reinterpret_cast<uv_handle_t*>(handle), &fd);
  if (reusePort) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  int rc = uv_tcp_bind(handle, reinterpret_cast<const sockaddr*>(&addr6), 0);
  if (rc != 0) {
    // No IPv6 on this host: fall back to IPv4 only.
    uv_close(reinterpret_cast<uv_handle_t*>(handle),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    handle = new uv_tcp_t;
    uv_tcp_init_ex(context_.loop, handle, AF_INET);
    handle->data = this;
    uv_fileno(reinterpret_cast<uv_handle_t*>(handle), &fd);
    if (reusePort) {
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    sockaddr_in addr4{};
    uv_ip4_addr("0.0.0.0", port, &addr4);
    rc = uv_tcp_bind(handle, reinterpret_cast<const sockaddr*>(&addr4), 0);
  }
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(handle), 1024, onConnection);
  handles_.push_back(reinterpret_cast<uv_stream_t*>(handle));
  return rc;
}

int Listener::listenUnix(const std::string& path) {
  auto* handle = new uv_pipe_t;
  uv_pipe_init(context_.loop, handle, 0);
  handle->data = this;
  handles_.push_back(reinterpret_cast<uv_stream_t*>(handle));
  unix_ = true;
  int rc = 0;
  if (!path.empty() && path[0] == '@') {
    // Linux abstract namespace: a leading NUL byte, no file.
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    size_t length = std::min(path.size() - 1, sizeof(addr.sun_path) - 2);
    std::memcpy(addr.sun_path + 1, path.data() + 1, length);
    socklen_t addrLength = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + length);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), addrLength) != 0) {
      rc = -errno;
      ::close(fd);
      return rc;
    }
    rc = uv_pipe_open(handle, fd);
  } else {
    rc = uv_pipe_bind(handle, path.c_str());
  }
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(handle), 1024, onConnection);
  return rc;
}

void Listener::close() {
  for (auto* handle : handles_) {
    auto* h = reinterpret_cast<uv_handle_t*>(handle);
    if (uv_is_closing(h)) continue;
    bool isPipe = h->type == UV_NAMED_PIPE;
    if (isPipe) {
      uv_close(h, [](uv_handle_t* x) { delete reinterpret_cast<uv_pipe_t*>(x); });
    } else {
      uv_close(h, [](uv_handle_t* x) { delete reinterpret_cast<uv_tcp_t*>(x); });
    }
  }
  handles_.clear();
}

void Listener::onConnection(uv_stream_t* server, int status) {
  if (status != 0) return;
  static_cast<Listener*>(server->data)->accept(server);
}

void Listener::accept(uv_stream_t* server) {
  bool isPipe = reinterpret_cast<uv_handle_t*>(server)->type == UV_NAMED_PIPE;
  auto* connection =
      new ClientConnection(context_, isPipe ? Connection::Kind::Pipe : Connection::Kind::Tcp);
  if (uv_accept(server, connection->stream()) != 0) {
    connection->close();
    return;
  }
  ++context_.stats.connectionsAccepted;
  if (context_.stats.connectionsOpen > context_.maxConnections) {
    ++context_.stats.connectionsRejected;
    connection->close();
    return;
  }
  connection->start();
}

void closeClients(ServerContext& context) {
  // Closing removes a connection from the set: walk a copy.
  std::vector<Connection*> clients(context.clients.begin(), context.clients.end());
  for (Connection* client : clients)
    client->close();
}

size_t closeIdleClients(ServerContext& context) {
  std::vector<Connection*> clients(context.clients.begin(), context.clients.end());
  size_t busy = 0;
  for (Connection* connection : clients) {
    auto* client = static_cast<ClientConnection*>(connection);
    if (client->busy()) {
      ++busy;
      continue;
    }
    client->idleClose();
    if (client->writing()) ++busy;
  }
  return busy;
}

}  // namespace core
