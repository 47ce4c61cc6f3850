#include "puller/puller.h"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "puller/model_config.h"
#include "puller/model_dir.h"
#include "puller/storage/http_client.h"
#include "puller/storage/storage.h"
#include "puller/storage/util.h"
#include "puller/watcher.h"

namespace puller {
namespace fs = std::filesystem;

namespace {

enum class CallResult { Done, Retry, Failed };

}  // namespace

// Counters of model operations for the metrics endpoint.
class OperationMetrics {
 public:
  explicit OperationMetrics(prometheus::Registry* registry) {
    if (registry == nullptr) return;
    auto& done = prometheus::BuildCounter()
                     .Name("kserve_agent_puller_operations_total")
                     .Help("Model operations finished, by operation and outcome")
                     .Register(*registry);
    for (const char* operation : {"download", "load", "unload"}) {
      succeeded_[operation] = &done.Add({{"operation", operation}, {"outcome", "succeeded"}});
      failed_[operation] = &done.Add({{"operation", operation}, {"outcome", "failed"}});
    }
    retried_ = &prometheus::BuildCounter()
                    .Name("kserve_agent_puller_retries_total")
                    .Help("Model operation attempts that failed and were retried")
                    .Register(*registry)
                    .Add({});
  }
  void succeeded(const std::string& operation) { count(succeeded_, operation); }
  void failed(const std::string& operation) { count(failed_, operation); }
  void retried() {
    if (retried_ != nullptr) retried_->Increment();
  }

 private:
  static void count(std::map<std::string, prometheus::Counter*>& counters,
                    const std::string& operation) {
    auto it = counters.find(operation);
    if (it != counters.end()) it->second->Increment();
  }
  std::map<std::string, prometheus::Counter*> succeeded_;
  std::map<std::string, prometheus::Counter*> failed_;
  prometheus::Counter* retried_ = nullptr;
};

struct Puller::Impl {
  explicit Impl(Options opts)
      : options(std::move(opts)), watcher(options.configDir), metrics(options.metrics) {
    options.concurrency = std::max(options.concurrency, 1);
    options.retries = std::max(options.retries, 0);
  }

  Options options;
  ConfigWatcher watcher;
  OperationMetrics metrics;
  std::thread watchThread;
  std::vector<std::thread> workers;
  bool started = false;
  std::atomic<bool> stopping{false};
  std::atomic<bool> initialReady{false};

  // Guarded by mutex: pending operations per model, the models waiting for a worker (each at
  // most once), the models waiting or running, and the initial operations not finished yet.
  std::mutex mutex;
  std::condition_variable wake;
  std::map<std::string, std::deque<ModelOp>> queues;
  std::deque<std::string> ready;
  std::set<std::string> scheduled;
  size_t startupPending = 0;

  // Owned by the watch thread.
  Tracker tracker;
  std::string appliedConfig;

  void enqueue(std::vector<ModelOp> ops, bool onStartup) {
    std::lock_guard lock(mutex);
    if (onStartup) startupPending = ops.size();
    for (auto& op : ops) {
      op.onStartup = onStartup;
      std::string name = op.name;
      queues[name].push_back(std::move(op));
      if (scheduled.insert(name).second) ready.push_back(name);
    }
    if (onStartup && startupPending == 0) markInitialReady();
    wake.notify_all();
  }

  void markInitialReady() {
    if (!initialReady.exchange(true)) spdlog::info("puller: initial models are in place");
  }

  // Waits for the backoff of retry `attempt` (0-based); false when stopping.
  bool backoff(int attempt) {
    const auto delay = options.retryBackoff.delay(attempt + 1);
    std::unique_lock lock(mutex);
    return !wake.wait_for(lock, delay, [&] { return stopping.load(); });
  }

  // One attempt at POST /v2/repository/models/<name>/<action>.
  CallResult callServer(const std::string& name, const std::string& action, std::string& cause) {
    storage::HttpRequest request;
    request.method = "POST";
    request.url = "http://127.0.0.1:" + std::to_string(options.componentPort) +
                  "/v2/repository/models/" + storage::percentEncode(name, false) + "/" + action;
    request.headers.push_back("Content-Type: application/json");
    request.body = "{}";
    request.timeout = options.serverTimeout;
    request.cancel = &stopping;
    storage::HttpResponse response = storage::httpFetch(request);
    if (response.ok()) return CallResult::Done;
    if (!response.error.empty()) {
      cause = response.error;
      return CallResult::Retry;
    }
    cause = "HTTP " + std::to_string(response.status);
    std::string body = response.body.substr(0, 200);
    if (!body.empty()) cause += ": " + body;
    if (action == "unload" && response.status == 404) return CallResult::Done;
    return response.status >= 500 || response.status == 429 ? CallResult::Retry
                                                            : CallResult::Failed;
  }

  bool callServerWithRetries(const std::string& name, const std::string& action) {
    for (int attempt = 0;; ++attempt) {
      std::string cause;
      CallResult result = callServer(name, action, cause);
      if (result == CallResult::Done) {
        spdlog::info("puller: model {}: {} succeeded", name, action);
        metrics.succeeded(action);
        return true;
      }
      if (stopping) return false;
      if (result == CallResult::Failed || attempt >= options.retries) {
        spdlog::error("puller: model {}: {} failed, giving up: {}", name, action, cause);
        metrics.failed(action);
        return false;
      }
      metrics.retried();
      spdlog::warn("puller: model {}: {} failed (attempt {} of {}): {}", name, action, attempt + 1,
                   options.retries + 1, cause);
      if (!backoff(attempt)) return false;
    }
  }

  // Downloads into a staging folder and installs it; the cause on failure.
  storage::Status downloadOnce(const std::string& name, const ModelSpec& spec) {
    fs::path modelDir = options.modelDir;
    std::error_code ec;
    fs::create_directories(modelDir, ec);
    std::string error;
    std::string staging = makeStagingFolder(modelDir, name, error);
    if (staging.empty()) return storage::Status::failure(error);
    storage::Status status = storage::download(spec.storageUri, staging, {&stopping});
    if (status.ok && !installModel(modelDir, name, spec, staging, error)) {
      status = storage::Status::failure(error);
    }
    if (!status.ok) fs::remove_all(staging, ec);
    return status;
  }

  void add(const ModelOp& op) {
    std::string uri = storage::redactUri(op.spec.storageUri);
    if (hasMarker(options.modelDir, op.name, op.spec)) {
      spdlog::info("puller: model {}: already downloaded from {}", op.name, uri);
    } else {
      for (int attempt = 0;; ++attempt) {
        spdlog::info("puller: model {}: downloading {}", op.name, uri);
        storage::Status status = downloadOnce(op.name, op.spec);
        if (status.ok) {
          spdlog::info("puller: model {}: downloaded {}", op.name, uri);
          metrics.succeeded("download");
          break;
        }
        if (stopping) return;
        if (status.permanent || attempt >= options.retries) {
          spdlog::error("puller: model {}: download failed, giving up: {}", op.name,
                        status.message);
          metrics.failed("download");
          return;
        }
        metrics.retried();
        spdlog::warn("puller: model {}: download failed (attempt {} of {}): {}", op.name,
                     attempt + 1, options.retries + 1, status.message);
        if (!backoff(attempt)) return;
      }
    }
    callServerWithRetries(op.name, "load");
  }

  void remove(const ModelOp& op) {
    std::error_code ec;
    fs::remove_all(fs::path(options.modelDir) / op.name, ec);
    if (ec) {
      spdlog::error("puller: model {}: cannot delete its folder: {}", op.name, ec.message());
    } else {
      spdlog::info("puller: model {}: folder deleted", op.name);
    }
    callServerWithRetries(op.name, "unload");
  }

  void workerLoop() {
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait(lock, [&] { return stopping.load() || !ready.empty(); });
      if (stopping) return;
      std::string name = std::move(ready.front());
      ready.pop_front();
      auto& queue = queues[name];
      ModelOp op = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      if (op.type == OpType::Add) {
        add(op);
      } else {
        remove(op);
      }
      lock.lock();
      auto it = queues.find(name);
      if (it->second.empty()) {
        queues.erase(it);
        scheduled.erase(name);
      } else {
        ready.push_back(name);
        wake.notify_one();
      }
      if (op.onStartup && --startupPending == 0 && !stopping) markInitialReady();
    }
  }

  // Reads models.json; nullopt (logged) when unreadable or invalid, or unchanged since applied.
  std::optional<std::vector<ModelEntry>> readConfig(bool initial) {
    fs::path path = fs::path(options.configDir) / "models.json";
    std::ifstream in(path);
    if (!in) {
      spdlog::warn("puller: cannot read {}; keeping the current models", path.string());
      return std::nullopt;
    }
    std::stringstream text;
    text << in.rdbuf();
    if (!initial && text.str() == appliedConfig) return std::nullopt;
    std::string error;
    auto models = parseModelConfig(text.str(), error);
    if (!models) {
      spdlog::error("puller: {}: {}; keeping the current models", path.string(), error);
      return std::nullopt;
    }
    appliedConfig = text.str();
    return models;
  }

  void logOps(const std::vector<ModelOp>& ops) {
    for (const auto& op : ops) {
      spdlog::info("puller: model {}: {} scheduled", op.name,
                   op.type == OpType::Add ? "add" : "remove");
    }
  }

  void watchLoop() {
    std::error_code ec;
    fs::create_directories(options.modelDir, ec);
    if (ec) spdlog::error("puller: cannot create model dir {}: {}", options.modelDir, ec.message());
    tracker = recoverModelDir(options.modelDir);
    std::vector<ModelOp> initialOps;
    if (auto models = readConfig(true)) initialOps = diffModels(tracker, *models);
    logOps(initialOps);
    enqueue(std::move(initialOps), true);
    while (watcher.waitForChange()) {
      auto models = readConfig(false);
      if (!models) continue;
      auto ops = diffModels(tracker, *models);
      spdlog::info("puller: models.json changed: {} operations", ops.size());
      logOps(ops);
      enqueue(std::move(ops), false);
    }
  }
};

Puller::Puller(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Puller::~Puller() {
  stop();
}

void Puller::start() {
  if (impl_->started) return;
  impl_->started = true;
  spdlog::info("puller: watching {} for models, downloading into {}", impl_->options.configDir,
               impl_->options.modelDir);
  for (int i = 0; i < impl_->options.concurrency; ++i) {
    impl_->workers.emplace_back([this] { impl_->workerLoop(); });
  }
  impl_->watchThread = std::thread([this] { impl_->watchLoop(); });
}

bool Puller::initialModelsReady() const {
  return impl_->initialReady.load();
}

void Puller::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping.exchange(true)) return;
    impl_->wake.notify_all();
  }
  impl_->watcher.stop();
  if (impl_->watchThread.joinable()) impl_->watchThread.join();
  for (auto& worker : impl_->workers)
    worker.join();
  impl_->workers.clear();
}

}  // namespace puller
