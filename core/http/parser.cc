#include "core/http/parser.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "core/http/url.h"
#include "core/util/recycle.h"

namespace core {

namespace {

HttpParser& self(llhttp_t* p) {
  return *static_cast<HttpParser*>(p->data);
}

// An absolute-form target (RFC 9112 §3.2.2, "GET http://host/path"), as proxies are sent, is
// what Go's server and proxy make of it: the model server gets the path and query, and the
// target's authority as Host. Other forms but "*" are refused. False when the target is bad.
bool toOriginForm(RequestHead& request) {
  if (request.target == "*") return true;
  auto parts = splitHttpUrl(request.target);
  if (!parts || parts->userInfo) return false;
  std::string target(parts->target.empty() || parts->target.front() != '/' ? "/" : "");
  target += parts->target;
  for (auto& header : request.headers) {
    if (iequals(header.name, "Host")) header.value = std::string(parts->authority);
  }
  request.target = std::move(target);
  return true;
}

}  // namespace

HttpParser::HttpParser(llhttp_type_t type, Delegate& delegate, ParserLimits limits)
    : delegate_(delegate), limits_(limits), type_(type) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = onMessageBegin;
  settings_.on_url = onUrl;
  settings_.on_version_complete = onVersionComplete;
  settings_.on_status = onStatus;
  settings_.on_header_field = onHeaderField;
  settings_.on_header_value = onHeaderValue;
  settings_.on_header_value_complete = onHeaderValueComplete;
  settings_.on_headers_complete = onHeadersComplete;
  settings_.on_body = onBody;
  settings_.on_message_complete = onMessageComplete;
  llhttp_init(&parser_, type, &settings_);
  parser_.data = this;
  // llhttp knows HTTP/0.9, 1.0, 1.1 and 2.0 only. Requests take any single-digit version, as
  // Go's server does (RFC 9112 §2.3): onVersionComplete decides what to do with it, and
  // malformed versions ("HTTP/1.10", "HTTP/1") are still refused by llhttp. llhttp 8 has
  // the flag but no setter for it; llhttp_reset keeps it.
  if (type == HTTP_REQUEST) parser_.lenient_flags |= LENIENT_VERSION;
}

bool HttpParser::chunked() const {
  return (parser_.flags & F_CHUNKED) != 0;
}

HttpParser::Result HttpParser::execute(const char* data, size_t length) {
  if (!violation_.empty()) {
    // An error is final, whatever bytes follow.
    Result result;
    result.status = Status::Error;
    result.errorStatus = versionUnsupported_ ? 505 : 400;
    result.reason = versionUnsupported_ ? violation_ : "malformed HTTP message: " + violation_;
    return result;
  }
  if (type_ != HTTP_REQUEST) return resultFor(llhttp_execute(&parser_, data, length), data, length);
  // Requests: every head is checked by scanHead before llhttp sees it, and llhttp stops after
  // each message so that the next head's first byte is known.
  size_t position = 0;
  while (true) {
    if (scan_.inHead && !scanHead(data + position, length - position)) {
      Result result;
      result.status = Status::Error;
      result.consumed = position;
      result.reason = "malformed HTTP message: " + violation_;
      return result;
    }
    llhttp_errno_t error = llhttp_execute(&parser_, data + position, length - position);
    if (error != HPE_PAUSED || !messageEnded_) {
      Result result = resultFor(error, data + position, length - position);
      result.consumed += position;
      return result;
    }
    messageEnded_ = false;
    position = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
    // After an upgrade the rest is tunnel data, not a head.
    scan_ = HeadScan{};
    scan_.inHead = parser_.upgrade == 0;
    if (delegatePaused_) {
      delegatePaused_ = false;
      Result result;
      result.status = parser_.upgrade != 0 ? Status::Upgrade : Status::Paused;
      result.consumed = position;
      return result;
    }
    llhttp_resume(&parser_);
    if (position == length) return Result{Status::Ok, length, 400, ""};
  }
}

bool HttpParser::scanHead(const char* data, size_t length) {
  for (size_t i = 0; i < length && scan_.inHead; ++i) {
    if (!scan_.previousCR && !scan_.lineEmpty) {
      // Inside a line only CR and LF matter: skip to the next CR, checking that no LF comes
      // before it. memchr does this many bytes at a time.
      const char* from = data + i;
      size_t left = length - i;
      const auto* cr = static_cast<const char*>(std::memchr(from, '\r', left));
      size_t span = cr != nullptr ? static_cast<size_t>(cr - from) : left;
      if (std::memchr(from, '\n', span) != nullptr) {
        violation_ = "bare LF in the head";
        return false;
      }
      i += span;
      if (i == length) break;
    }
    char c = data[i];
    if (scan_.previousCR && c != '\n') {
      violation_ = "CR without LF in the head";
      return false;
    }
    if (c == '\r') {
      scan_.previousCR = true;
      continue;
    }
    if (c == '\n') {
      if (!scan_.previousCR) {
        violation_ = "bare LF in the head";
        return false;
      }
      scan_.previousCR = false;
      if (scan_.lineEmpty && scan_.sawContent) scan_.inHead = false;
      scan_.lineEmpty = true;
      continue;
    }
    if (scan_.lineEmpty && scan_.sawContent && (c == ' ' || c == '\t')) {
      violation_ = "obsolete header line folding";
      return false;
    }
    scan_.lineEmpty = false;
    scan_.sawContent = true;
  }
  return true;
}

HttpParser::Result HttpParser::finish() {
  return resultFor(llhttp_finish(&parser_), nullptr, 0);
}

void HttpParser::resume() {
  llhttp_resume(&parser_);
}

HttpParser::Result HttpParser::resultFor(llhttp_errno_t error, const char* data, size_t length) {
  Result result;
  result.consumed = length;
  switch (error) {
    case HPE_OK:
      return result;
    case HPE_PAUSED:
      result.status = Status::Paused;
      result.consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
      return result;
    case HPE_PAUSED_UPGRADE:
      result.status = Status::Upgrade;
      result.consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
      return result;
    default:
      break;
  }
  result.status = Status::Error;
  if (headerLimitHit_) {
    result.errorStatus = 431;
    result.reason = "request header fields too large";
  } else if (versionUnsupported_) {
    result.errorStatus = 505;
    result.reason = violation_;
  } else if (!violation_.empty()) {
    result.errorStatus = 400;
    result.reason = "malformed HTTP message: " + violation_;
  } else {
    result.errorStatus = 400;
    const char* reason = llhttp_get_error_reason(&parser_);
    result.reason = std::string("malformed HTTP message: ") + (reason != nullptr ? reason : "");
  }
  return result;
}

bool HttpParser::addHeaderBytes(size_t length) {
  headerBytes_ += length;
  if (headerBytes_ > limits_.maxHeaderBytes) {
    headerLimitHit_ = true;
    return false;
  }
  return true;
}

int HttpParser::onMessageBegin(llhttp_t* p) {
  HttpParser& s = self(p);
  s.inMessage_ = true;
  // The last head usually went to its exchange, which recycles it when it ends; whatever is
  // left of it is recycled here, and the new head starts from recycled storage.
  if (s.type_ == HTTP_REQUEST) {
    recycleHead(s.request_);
    s.request_.headers = reuseHeaders();
  } else {
    recycleHead(s.response_);
    s.response_.headers = reuseHeaders();
  }
  s.field_.clear();
  s.value_.clear();
  s.inValue_ = false;
  s.inTrailers_ = false;
  s.trailers_.clear();
  s.headerBytes_ = 0;
  s.contentLength_.reset();
  return 0;
}

int HttpParser::onUrl(llhttp_t* p, const char* at, size_t length) {
  HttpParser& s = self(p);
  if (!s.addHeaderBytes(length)) return -1;
  appendReusing(s.request_.target, at, length);
  return 0;
}

int HttpParser::onVersionComplete(llhttp_t* p) {
  HttpParser& s = self(p);
  // As Go's server: any HTTP/1.x is served as HTTP/1.1 (a minor version it does not know is
  // taken as the highest it does), other major versions get 505. An HTTP/2 client with prior
  // knowledge never gets here: its preface is recognised before parsing.
  if (s.type_ != HTTP_REQUEST || p->http_major == 1) return 0;
  s.versionUnsupported_ = true;
  s.violation_ = "unsupported HTTP version HTTP/" + std::to_string(p->http_major) + "." +
                 std::to_string(p->http_minor);
  return -1;
}

int HttpParser::onStatus(llhttp_t* p, const char* at, size_t length) {
  HttpParser& s = self(p);
  if (!s.addHeaderBytes(length)) return -1;
  appendReusing(s.response_.reason, at, length);
  return 0;
}

int HttpParser::onHeaderField(llhttp_t* p, const char* at, size_t length) {
  HttpParser& s = self(p);
  if (!s.addHeaderBytes(length)) return -1;
  appendReusing(s.field_, at, length);
  return 0;
}

int HttpParser::onHeaderValue(llhttp_t* p, const char* at, size_t length) {
  HttpParser& s = self(p);
  if (!s.addHeaderBytes(length)) return -1;
  appendReusing(s.value_, at, length);
  return 0;
}

int HttpParser::onHeaderValueComplete(llhttp_t* p) {
  HttpParser& s = self(p);
  if (s.field_.empty()) {
    s.violation_ = "empty header name";
    return -1;
  }
  Headers& headers = s.inTrailers_             ? s.trailers_
                     : s.type_ == HTTP_REQUEST ? s.request_.headers
                                               : s.response_.headers;
  if (headers.size() >= s.limits_.maxHeaderCount) {
    s.headerLimitHit_ = true;
    return -1;
  }
  while (!s.value_.empty() && (s.value_.back() == ' ' || s.value_.back() == '\t')) {
    s.value_.pop_back();
  }
  if (!s.inTrailers_ && iequals(s.field_, "content-length")) {
    uint64_t value = 0;
    std::from_chars(s.value_.data(), s.value_.data() + s.value_.size(), value);
    s.contentLength_ = value;
  }
  // One allocation for a typical head instead of one per doubling.
  if (headers.empty()) headers.reserve(16);
  headers.push_back({std::move(s.field_), std::move(s.value_)});
  s.field_.clear();
  s.value_.clear();
  return 0;
}

int HttpParser::onHeadersComplete(llhttp_t* p) {
  HttpParser& s = self(p);
  if (s.type_ == HTTP_REQUEST && (p->flags & F_TRANSFER_ENCODING) != 0 &&
      (p->flags & F_CHUNKED) == 0) {
    // llhttp refuses this only after this callback, which would already have started
    // forwarding the request (RFC 9112 §6.3: the body length cannot be known).
    s.violation_ = "Transfer-Encoding without chunked as the final coding";
    return -1;
  }
  if (s.type_ == HTTP_REQUEST && p->method != HTTP_CONNECT) {
    // RFC 9112 §3.2: exactly one Host field, and HTTP/1.1 must send it (as Go's server).
    size_t hosts = 0;
    for (const auto& h : s.request_.headers)
      hosts += iequals(h.name, "host") ? 1 : 0;
    if (hosts > 1 || (hosts == 0 && p->http_major == 1 && p->http_minor >= 1)) {
      s.violation_ = hosts > 1 ? "too many Host headers" : "missing required Host header";
      return -1;
    }
  }
  if (s.type_ == HTTP_REQUEST && p->method != HTTP_CONNECT && !s.request_.target.empty() &&
      s.request_.target.front() != '/' && !toOriginForm(s.request_)) {
    s.violation_ = "invalid request target";
    return -1;
  }
  if (s.type_ == HTTP_REQUEST) {
    s.request_.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    s.request_.versionMinor = std::min<int>(p->http_minor, 1);
  } else {
    s.response_.status = p->status_code;
    s.response_.versionMinor = p->http_minor;
  }
  bool noBody = s.delegate_.onParsedHead();
  s.inTrailers_ = true;  // any field llhttp reports from now on ends a chunked body
  if (p->upgrade != 0) return 2;
  if (!noBody && !s.chunked()) s.bodyBytesLeft_ = s.contentLength_.value_or(0);
  return noBody ? 1 : 0;
}

int HttpParser::onBody(llhttp_t* p, const char* at, size_t length) {
  HttpParser& s = self(p);
  s.bodyBytesLeft_ -= std::min<uint64_t>(s.bodyBytesLeft_, length);
  s.delegate_.onParsedBody(at, length);
  return 0;
}

int HttpParser::onMessageComplete(llhttp_t* p) {
  HttpParser& s = self(p);
  s.inMessage_ = false;
  s.bodyBytesLeft_ = 0;
  s.headerLimitHit_ = false;
  bool pause = s.delegate_.onParsedMessageComplete();
  if (s.type_ != HTTP_REQUEST) return pause ? HPE_PAUSED : 0;
  s.messageEnded_ = true;
  s.delegatePaused_ = pause;
  return HPE_PAUSED;
}

}  // namespace core
