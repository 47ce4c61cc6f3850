#include "core/chain/chain.h"

#include <algorithm>
#include <stdexcept>

#include "core/util/assert.h"

namespace core {

void Chain::setFilters(std::vector<Filter*> filters) {
  if (filters.size() > kMaxFilters) throw std::invalid_argument("too many filters in one chain");
  filters_ = std::move(filters);
  requestDataObservers_.clear();
  responseObservers_.clear();
  completeObservers_.clear();
  for (size_t i = 0; i < filters_.size(); ++i) {
    unsigned observes = filters_[i]->observes();
    if ((observes & kObserveRequestData) != 0) requestDataObservers_.push_back(i);
    if ((observes & kObserveResponse) != 0) responseObservers_.push_back(i);
    if ((observes & kObserveComplete) != 0) completeObservers_.push_back(i);
  }
}

ChainRun::ChainRun(const Chain& chain, ChainCallbacks& callbacks, size_t maxBufferedBodyBytes)
    : chain_(chain), callbacks_(callbacks), maxBufferedBodyBytes_(maxBufferedBodyBytes) {}

void ChainRun::start(Exchange& exchange, bool bodyComing) {
  KSA_ASSERT(state_ == State::Filters && next_ == 0);
  bodyComing_ = bodyComing;
  runFilters(exchange);
}

void ChainRun::runFilters(Exchange& exchange) {
  const std::vector<Filter*>& filters = chain_.filters_;
  while (next_ < filters.size()) {
    size_t index = next_++;
    active_ = index;
    reached_ = std::max(reached_, index + 1);
    Action action = filters[index]->onRequestHeaders(callbacks_.exchangePtr());
    if (stopped(exchange)) return;
    if (action == Action::Handled) {
      state_ = State::Held;
      return;
    }
    if (action == Action::Buffer || action == Action::BufferOrContinue) {
      buffering_ = index;
      streamIfTooLarge_ = action == Action::BufferOrContinue;
      if (!bodyComing_) {
        bodyBuffered_ = true;
        runBodyHook(exchange);
        return;
      }
      state_ = State::Buffering;
      return;
    }
  }
  state_ = State::Passed;
  active_ = filters.size();
  callbacks_.onChainPassed();
}

void ChainRun::runBodyHook(Exchange& exchange) {
  state_ = State::Filters;
  active_ = buffering_;
  Action action = chain_.filters_[buffering_]->onRequestBody(callbacks_.exchangePtr(), body_);
  if (stopped(exchange)) return;
  if (action == Action::Continue) {
    runFilters(exchange);
  } else {
    state_ = State::Held;
  }
}

void ChainRun::requestData(Exchange& exchange, const char* data, size_t length) {
  std::string_view chunk(data, length);
  for (size_t index : chain_.requestDataObservers_) {
    if (index < reached_) chain_.filters_[index]->onRequestData(exchange, chunk);
  }
  if (state_ == State::Buffering) {
    collect(exchange, data, length);
  } else if (state_ == State::Passed) {
    callbacks_.onPassBody(data, length);
  }
}

void ChainRun::requestEnd(Exchange& exchange) {
  bodyComing_ = false;
  if (state_ != State::Buffering) return;
  bodyBuffered_ = true;
  runBodyHook(exchange);
}

void ChainRun::collect(Exchange& exchange, const char* data, size_t length) {
  if (body_.size() + length > maxBufferedBodyBytes_) {
    if (streamIfTooLarge_) {
      streamInstead(exchange, data, length);
      return;
    }
    active_ = buffering_;
    callbacks_.onBufferedBodyTooLarge(maxBufferedBodyBytes_);
    return;
  }
  body_.append(data, length);
}

// The body outgrew the buffering filter's BufferOrContinue: the rest of the chain sees the
// request as if that filter had returned Continue, and what was collected goes first.
void ChainRun::streamInstead(Exchange& exchange, const char* data, size_t length) {
  std::string collected = std::move(body_);
  body_.clear();
  state_ = State::Filters;
  runFilters(exchange);
  if (exchange.finished()) return;
  if (state_ == State::Passed) {
    callbacks_.onPassBody(collected.data(), collected.size());
    callbacks_.onPassBody(data, length);
  } else if (state_ == State::Buffering) {
    // A later filter reads it whole in turn, under the same bound.
    body_ = std::move(collected);
    collect(exchange, data, length);
  }
}

void ChainRun::responseHead(Exchange& exchange) const {
  for (size_t index : chain_.responseObservers_) {
    if (index < active_) chain_.filters_[index]->onResponseHeaders(exchange);
  }
}

void ChainRun::responseData(Exchange& exchange, std::string_view chunk) const {
  for (size_t index : chain_.responseObservers_) {
    if (index < active_) chain_.filters_[index]->onResponseData(exchange, chunk);
  }
}

void ChainRun::complete(Exchange& exchange, bool complete) const {
  for (size_t index : chain_.completeObservers_) {
    if (index < reached_) chain_.filters_[index]->onComplete(exchange, complete);
  }
}

std::string ChainRun::describe() const {
  static constexpr const char* kStates[] = {"filters", "buffering", "held", "passed", "replied"};
  return std::string("chain run: ") + kStates[static_cast<int>(state_)] + ", next filter " +
         std::to_string(next_) + ", reached " + std::to_string(reached_) + ", observing " +
         std::to_string(active_) +
         (bodyBuffered_ ? ", body buffered (" + std::to_string(body_.size()) + " bytes)" : "");
}

}  // namespace core
