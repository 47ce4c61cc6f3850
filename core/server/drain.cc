#include "core/server/drain.h"

#include <spdlog/spdlog.h>

namespace core {

DrainSequence::DrainSequence(ServerContext& context, std::chrono::milliseconds quietPeriod,
                             std::chrono::milliseconds timeout, DrainCallbacks& callbacks)
    : context_(context),
      quietPeriod_(quietPeriod),
      timeout_(timeout),
      callbacks_(callbacks),
      timer_(context.loop) {}

void DrainSequence::begin() {
  if (stage_ != Stage::Serving) return;
  stage_ = Stage::Quiet;
  restartQuietPeriod();
}

void DrainSequence::restartQuietPeriod() {
  timer_.start(quietPeriod_, [this] { startFinishing(); });
}

void DrainSequence::startFinishing() {
  stage_ = Stage::Finishing;
  context_.draining = true;
  callbacks_.stopAccepting();
  deadline_ = std::chrono::steady_clock::now() + timeout_;
  timer_.start(timeout_, [this] {
    spdlog::warn("drain timeout: {} exchanges still in flight",
                 context_.stats.exchangesInFlight.load());
    end(true);
  });
  nextFilter_ = context_.chain.filters().size();
  advance();
}

void DrainSequence::advance() {
  if (stage_ != Stage::Finishing || filterDraining_ || inAdvance_) return;
  inAdvance_ = true;
  closeIdleClients(context_);
  const std::vector<Filter*>& filters = context_.chain.filters();
  while (nextFilter_ > 0) {
    Filter* filter = filters[nextFilter_ - 1];
    bool observer = (filter->observes() & kObserveComplete) != 0;
    if (observer && context_.stats.exchangesInFlight > 0) break;
    --nextFilter_;
    filterDraining_ = true;
    filter->drain(deadline_, [this] {
      filterDraining_ = false;
      advance();
    });
    if (filterDraining_) break;
  }
  inAdvance_ = false;
  // Responses still being written to clients are waited for too (up to the deadline).
  if (!filterDraining_ && nextFilter_ == 0 && context_.stats.exchangesInFlight == 0 &&
      closeIdleClients(context_) == 0) {
    end(false);
  }
}

void DrainSequence::end(bool timedOut) {
  if (stage_ == Stage::Done) return;
  stage_ = Stage::Done;
  timer_.stop();
  callbacks_.drained(timedOut);
}

}  // namespace core
