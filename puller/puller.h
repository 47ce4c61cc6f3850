// The model puller (--enable-puller): keeps <model-dir> and the model server in line with
// <config-dir>/models.json. Runs on its own threads (one watcher, `concurrency` workers) and
// never blocks the caller's loop.
//
// Per model, operations run one at a time in the order they were decided; different models run
// in parallel, at most `concurrency` at once. An Add downloads into a temporary folder beside the
// target, renames it into place with its SUCCESS marker and asks the model server to load the
// model; a Remove deletes the folder and asks the server to unload it. Downloads and server
// calls are retried with exponential backoff.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/util/backoff.h"

namespace prometheus {
class Registry;
}

namespace puller {

struct Options {
  std::string configDir = "/mnt/configs";
  std::string modelDir = "/mnt/models";
  uint16_t componentPort = 8080;
  int concurrency = 4;  // models processed at once
  int retries = 5;      // retries after a failed first attempt (download, load, unload)
  // The wait before each retry: 1 s doubling up to 30 s, with jitter.
  core::Backoff retryBackoff{.first = std::chrono::seconds(1), .cap = std::chrono::seconds(30)};
  std::chrono::milliseconds serverTimeout{300000};  // one load or unload call
  // Where the operation counters go (kserve_agent_puller_*); none when null.
  prometheus::Registry* metrics = nullptr;
};

class Puller {
 public:
  explicit Puller(Options options);
  ~Puller();  // stops and joins
  Puller(const Puller&) = delete;
  Puller& operator=(const Puller&) = delete;

  // Recovers the models whose SUCCESS markers are on disk, applies the initial models.json and
  // starts watching. Returns at once; the work happens on the puller's threads.
  void start();
  // True once every operation decided from the initial models.json has finished, successfully
  // or after its last retry. Thread-safe.
  bool initialModelsReady() const;
  // Cancels transfers in progress and joins the threads. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace puller
