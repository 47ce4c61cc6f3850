// An exchange without sockets, for driving filters and the chain by hand as the server would:
// the request is set by the test, replies are recorded, and the test says when the client left.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/chain/filter.h"

namespace testsupport {

class FakeExchange : public core::Exchange {
 public:
  FakeExchange(std::string method, std::string target, core::Headers headers = {}) {
    request_.method = std::move(method);
    request_.target = std::move(target);
    request_.headers = std::move(headers);
  }
  FakeExchange(uint64_t id, core::RequestHead request) : id_(id), request_(std::move(request)) {}

  // core::Exchange
  const core::RequestHead& request() const override { return request_; }
  core::RequestHead& mutableRequest() override { return request_; }
  const std::string& clientAddress() const override { return address_; }
  const core::ResponseHead* response() const override { return response_ ? &*response_ : nullptr; }
  uint64_t id() const override { return id_; }
  std::chrono::system_clock::time_point startTime() const override { return start_; }
  // Over once answered or once the client left.
  bool finished() const override { return gone || replies > 0; }
  bool requestReceived() const override { return received; }
  void reply(core::ResponseHead head, std::string body) override {
    if (finished()) return;
    ++replies;
    response_ = std::move(head);
    body_ = std::move(body);
  }

  // The response head as a terminal would have started it (not a reply).
  void setResponse(core::ResponseHead head) { response_ = std::move(head); }
  int status() const { return response_ ? response_->status : 0; }
  std::string header(std::string_view name) const {
    const std::string* value = response_ ? core::findHeader(response_->headers, name) : nullptr;
    return value != nullptr ? *value : "";
  }
  const std::string& body() const { return body_; }

  bool gone = false;     // the client left
  bool received = true;  // what requestReceived() says
  int replies = 0;

 private:
  uint64_t id_ = 1;
  core::RequestHead request_;
  std::string address_ = "127.0.0.1";
  std::optional<core::ResponseHead> response_;
  std::string body_;
  std::chrono::system_clock::time_point start_ = std::chrono::system_clock::now();
};

}  // namespace testsupport
