// llhttp wrapped once for requests (from clients) and responses (from the model server).
// Header slices are copied into the message head as they arrive, so reads may split anywhere.
#pragma once

#include <llhttp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "core/http/head.h"

namespace core {

struct ParserLimits {
  size_t maxHeaderBytes = 64 * 1024;
  size_t maxHeaderCount = 100;
};

class HttpParser {
 public:
  class Delegate {
   public:
    virtual ~Delegate() = default;
    // The head is complete. Return true when the message has no body whatever its headers say
    // (a response to HEAD).
    virtual bool onParsedHead() = 0;
    virtual void onParsedBody(const char* data, size_t length) = 0;
    // The message is complete. Return true to pause parsing right after it.
    virtual bool onParsedMessageComplete() = 0;
  };

  enum class Status {
    Ok,       // every byte consumed
    Paused,   // stopped after a message at the delegate's request; `consumed` tells where
    Upgrade,  // the head of an upgrade (or CONNECT) was parsed; the rest is tunnel data
    Error,    // malformed input; `errorStatus` and `reason` describe it
  };
  struct Result {
    Status status = Status::Ok;
    size_t consumed = 0;
    int errorStatus = 400;
    std::string reason;
  };

  HttpParser(llhttp_type_t type, Delegate& delegate, ParserLimits limits = {});
  HttpParser(const HttpParser&) = delete;
  HttpParser& operator=(const HttpParser&) = delete;

  Result execute(const char* data, size_t length);
  // Signals the end of input (for bodies delimited by the connection closing).
  Result finish();
  void resume();

  RequestHead& request() { return request_; }
  ResponseHead& response() { return response_; }
  // The trailer fields of the last chunked message, complete once the message is.
  const Headers& trailers() const { return trailers_; }
  Headers takeTrailers() { return std::exchange(trailers_, {}); }
  bool keepAlive() const { return llhttp_should_keep_alive(&parser_) != 0; }
  bool chunked() const;
  bool upgrade() const { return parser_.upgrade != 0; }
  // The declared Content-Length, when the message has one.
  std::optional<uint64_t> contentLength() const { return contentLength_; }
  // True when the message has begun but is not complete.
  bool inMessage() const { return inMessage_; }
  // Bytes of a Content-Length body still to come (0 outside such a body).
  uint64_t bodyBytesLeft() const { return bodyBytesLeft_; }
  // True when no byte of a new message has been seen since the last one completed.
  bool idle() const { return !inMessage_; }

 private:
  static int onMessageBegin(llhttp_t* p);
  static int onUrl(llhttp_t* p, const char* at, size_t length);
  static int onVersionComplete(llhttp_t* p);
  static int onStatus(llhttp_t* p, const char* at, size_t length);
  static int onHeaderField(llhttp_t* p, const char* at, size_t length);
  static int onHeaderValue(llhttp_t* p, const char* at, size_t length);
  static int onHeaderValueComplete(llhttp_t* p);
  static int onHeadersComplete(llhttp_t* p);
  static int onBody(llhttp_t* p, const char* at, size_t length);
  static int onMessageComplete(llhttp_t* p);
  bool addHeaderBytes(size_t length);
  Result resultFor(llhttp_errno_t error, const char* data, size_t length);

  llhttp_t parser_;
  llhttp_settings_t settings_;
  Delegate& delegate_;
  ParserLimits limits_;
  llhttp_type_t type_;
  RequestHead request_;
  ResponseHead response_;
  Headers trailers_;
  bool inTrailers_ = false;  // header callbacks now are for the trailer section
  std::string field_;
  std::string value_;
  bool inValue_ = false;
  size_t headerBytes_ = 0;
  bool headerLimitHit_ = false;
  bool versionUnsupported_ = false;  // a request line of another major version than 1 (505)
  // The head checks llhttp 8 does not make: bare LF, CR without LF, obs-fold (RFC 9112 §2.2,
  // §5.2), tracked across reads.
  struct HeadScan {
    bool inHead = true;
    bool sawContent = false;
    bool lineEmpty = true;
    bool previousCR = false;
  };
  bool scanHead(const char* data, size_t length);
  HeadScan scan_;
  std::string violation_;
  bool messageEnded_ = false;
  bool delegatePaused_ = false;
  std::optional<uint64_t> contentLength_;
  uint64_t bodyBytesLeft_ = 0;
  bool inMessage_ = false;
};

}  // namespace core
