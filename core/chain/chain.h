// The chain: the filters of one server in order, and each exchange's way through them. The chain
// runs the filters' request hooks, reads a body whole for the filter that asks (within a bound),
// and tells the filters that saw a request about its response. What lies beyond the last filter
// (a proxy, a graph) is the terminal, started by the chain's owner when every filter let the
// request through.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/chain/filter.h"

namespace core {

// The filters of one server (one event loop), in order, and which of them observe what.
class Chain {
 public:
  // Sets the filters, in order (at most kMaxFilters; a filter's slot is its position).
  void setFilters(std::vector<Filter*> filters);
  const std::vector<Filter*>& filters() const { return filters_; }
  bool empty() const { return filters_.empty(); }

 private:
  friend class ChainRun;
  std::vector<Filter*> filters_;
  std::vector<size_t> requestDataObservers_;
  std::vector<size_t> responseObservers_;
  std::vector<size_t> completeObservers_;
};

// What a ChainRun asks of the exchange it runs for.
class ChainCallbacks {
 public:
  virtual ~ChainCallbacks() = default;
  // Every filter let the request through: the terminal takes it from here. When a filter read
  // the body whole, ChainRun::bodyBuffered() is true and body() holds it.
  virtual void onChainPassed() = 0;
  // Request body bytes for the terminal (after onChainPassed).
  virtual void onPassBody(const char* data, size_t length) = 0;
  // The body a filter asked to read whole outgrew `limit`: the exchange answers 413.
  virtual void onBufferedBodyTooLarge(size_t limit) = 0;
  // The exchange as filters take it in their request hooks (shared: a filter may hold it).
  virtual ExchangePtr exchangePtr() = 0;
};

// One exchange's way through a chain.
class ChainRun {
 public:
  enum class State {
    Filters,    // the request hooks are running
    Buffering,  // reading the body whole for a filter
    Held,       // a filter answered or holds the exchange
    Passed,     // the terminal has the request
    Replied,    // answered locally; no filter or terminal runs any more
  };

  // `maxBufferedBodyBytes`: the bound for a body read whole.
  ChainRun(const Chain& chain, ChainCallbacks& callbacks, size_t maxBufferedBodyBytes);
  ChainRun(const ChainRun&) = delete;
  ChainRun& operator=(const ChainRun&) = delete;

  // The request head is complete. `bodyComing`: body bytes are still to arrive (a body a filter
  // asks for is then collected before its onRequestBody runs).
  void start(Exchange& exchange, bool bodyComing);
  // A request body chunk: observers see it, then it is collected or passed to the terminal.
  void requestData(Exchange& exchange, const char* data, size_t length);
  // The request body is complete.
  void requestEnd(Exchange& exchange);
  // The exchange was answered locally: nothing runs any more but the observers.
  void replied() { state_ = State::Replied; }

  // The filters that saw the request observe its response.
  void responseHead(Exchange& exchange) const;
  void responseData(Exchange& exchange, std::string_view chunk) const;
  void complete(Exchange& exchange, bool complete) const;

  State state() const { return state_; }
  bool bodyBuffered() const { return bodyBuffered_; }
  // The body a filter read whole (and may have replaced).
  std::string& body() { return body_; }
  // A short description for logs and failed invariants.
  std::string describe() const;

 private:
  void runFilters(Exchange& exchange);
  void runBodyHook(Exchange& exchange);
  void collect(Exchange& exchange, const char* data, size_t length);
  void streamInstead(Exchange& exchange, const char* data, size_t length);
  bool stopped(const Exchange& exchange) const {
    return exchange.finished() || state_ == State::Replied;
  }

  const Chain& chain_;
  ChainCallbacks& callbacks_;
  size_t maxBufferedBodyBytes_;
  State state_ = State::Filters;
  size_t next_ = 0;                // the filter whose request hook runs next
  size_t active_ = 0;              // filters before this index observe the response
  size_t reached_ = 0;             // filters that saw the request
  size_t buffering_ = 0;           // the filter reading the body whole
  bool streamIfTooLarge_ = false;  // that filter asked for BufferOrContinue
  bool bodyComing_ = false;
  bool bodyBuffered_ = false;
  std::string body_;
};

}  // namespace core
