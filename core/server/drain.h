// The drain sequence of one server (one event loop), as Knative's queue-proxy drains: after the
// signal, a quiet period that every new request restarts; then the listeners close, in-flight
// exchanges finish, the filters drain from the last to the first (a filter that observes
// exchanges only once none is in flight, so it sees every one), responses still being written
// to slow clients are waited for, and the sequence ends; or the deadline ends it first.
#pragma once

#include <chrono>
#include <cstddef>

#include "core/server/server.h"
#include "core/uv/timer.h"

namespace core {

// What the drain asks of its owner.
class DrainCallbacks {
 public:
  virtual ~DrainCallbacks() = default;
  // The quiet period is over: close the listeners.
  virtual void stopAccepting() = 0;
  // Everything drained (`timedOut` false), or the deadline passed first. Runs once.
  virtual void drained(bool timedOut) = 0;
};

class DrainSequence {
 public:
  enum class Stage { Serving, Quiet, Finishing, Done };

  DrainSequence(ServerContext& context, std::chrono::milliseconds quietPeriod,
                std::chrono::milliseconds timeout, DrainCallbacks& callbacks);
  DrainSequence(const DrainSequence&) = delete;
  DrainSequence& operator=(const DrainSequence&) = delete;

  // The signal came: the quiet period starts.
  void begin();
  // An ordinary request arrived: during the quiet period it starts again.
  void noteRequest() {
    if (stage_ == Stage::Quiet) restartQuietPeriod();
  }
  // An exchange ended or a client connection settled: the sequence may move on.
  void progress() {
    if (stage_ == Stage::Finishing) advance();
  }
  Stage stage() const { return stage_; }

 private:
  void restartQuietPeriod();
  void startFinishing();
  void advance();
  void end(bool timedOut);

  ServerContext& context_;
  std::chrono::milliseconds quietPeriod_;
  std::chrono::milliseconds timeout_;
  DrainCallbacks& callbacks_;
  Timer timer_;
  Stage stage_ = Stage::Serving;
  std::chrono::steady_clock::time_point deadline_;
  size_t nextFilter_ = 0;  // filters at and after this index have drained
  bool filterDraining_ = false;
  bool inAdvance_ = false;
};

}  // namespace core
