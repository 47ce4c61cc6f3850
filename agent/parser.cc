#include "agent/parser.h"

#include <charconv>

namespace agent {

namespace {

HttpParser& self(llhttp_t* p) { return *static_cast<HttpParser*>(p->data); }

}  // namespace

HttpParser::HttpParser(llhttp_type_t type, Delegate& delegate, ParserLimits limits)
    : delegate_(delegate), limits_(limits), type_(type) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = onMessageBegin;
  settings_.on_url = onUrl;
  settings_.on_status = onStatus;
  settings_.on_header_field = onHeaderField;
  settings_.on_header_value = onHeaderValue;
  settings_.on_header_value_complete = onHeaderValueComplete;
  settings_.on_headers_complete = onHeadersComplete;
  settings_.on_body = onBody;
  settings_.on_message_complete = onMessageComplete;
  llhttp_init(&parser_, type, &settings_);
  parser_.data = this;
}

bool HttpParser::chunked() const { return (parser_.flags & F_CHUNKED) != 0; }

HttpParser::Result HttpParser::execute(const char* data, size_t length) {
  valueSpans_ = 0;
  return resultFor(llhttp_execute(&parser_, data, length), data, length);
}

HttpParser::Result HttpParser::finish() { return resultFor(llhttp_finish(&parser_), nullptr, 0); }

void HttpParser::resume() { llhttp_resume(&parser_); }

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
  } else if (obsFold_) {
    result.errorStatus = 400;
    result.reason = "malformed HTTP message: obsolete header line folding";
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
  s.request_ = RequestHead{};
  s.response_ = ResponseHead{};
  s.field_.clear();
  s.value_.clear();
  s.inValue_ = false;
  s.headerBytes_ = 0;
  s.contentLength_.reset();
  return 0;
}

int HttpParser::onUrl(llhttp_t* p, const char* at, size_t length) {
  HttpParser& s = self(p);
  if (!s.addHeaderBytes(length)) return -1;
  s.request_.target.append(at, length);
  return 0;
}

int HttpParser::onStatus(llhttp_t* p, const char* at, size_t length) {
  HttpParser& s = self(p);
  if (!s.addHeaderBytes(length)) return -1;
  s.response_.reason.append(at, length);
  return 0;
}

int HttpParser::onHeaderField(llhttp_t* p, const char* at, size_t length) {
  HttpParser& s = self(p);
  if (!s.addHeaderBytes(length)) return -1;
  s.field_.append(at, length);
  return 0;
}

int HttpParser::onHeaderValue(llhttp_t* p, const char* at, size_t length) {
  HttpParser& s = self(p);
  if (!s.addHeaderBytes(length)) return -1;
  // llhttp reports a folded value (obs-fold, RFC 9112 §5.2) as a second span of the same value
  // within one buffer; a proxy must reject it rather than forward an ambiguous header.
  if (++s.valueSpans_ > 1) {
    s.obsFold_ = true;
    return -1;
  }
  s.value_.append(at, length);
  return 0;
}

int HttpParser::onHeaderValueComplete(llhttp_t* p) {
  HttpParser& s = self(p);
  Headers& headers = s.type_ == HTTP_REQUEST ? s.request_.headers : s.response_.headers;
  if (headers.size() >= s.limits_.maxHeaderCount) {
    s.headerLimitHit_ = true;
    return -1;
  }
  while (!s.value_.empty() && (s.value_.back() == ' ' || s.value_.back() == '\t')) {
    s.value_.pop_back();
  }
  if (iequals(s.field_, "content-length")) {
    uint64_t value = 0;
    std::from_chars(s.value_.data(), s.value_.data() + s.value_.size(), value);
    s.contentLength_ = value;
  }
  headers.push_back({std::move(s.field_), std::move(s.value_)});
  s.field_.clear();
  s.value_.clear();
  s.valueSpans_ = 0;
  return 0;
}

int HttpParser::onHeadersComplete(llhttp_t* p) {
  HttpParser& s = self(p);
  if (s.type_ == HTTP_REQUEST) {
    s.request_.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    s.request_.versionMinor = p->http_minor;
  } else {
    s.response_.status = p->status_code;
    s.response_.versionMinor = p->http_minor;
  }
  bool noBody = s.delegate_.onParsedHead();
  if (p->upgrade != 0) return 2;
  return noBody ? 1 : 0;
}

int HttpParser::onBody(llhttp_t* p, const char* at, size_t length) {
  self(p).delegate_.onParsedBody(at, length);
  return 0;
}

int HttpParser::onMessageComplete(llhttp_t* p) {
  HttpParser& s = self(p);
  s.inMessage_ = false;
  s.headerLimitHit_ = false;
  return s.delegate_.onParsedMessageComplete() ? HPE_PAUSED : 0;
}

}  // namespace agent
