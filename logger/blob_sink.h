// Blob sinks (s3://, gs://, abfs:// --log-url): each loop's logger turns its events into records
// and batches them (BlobSink, on the loop); complete batches go to the process's one upload
// thread (BlobUploads), which marshals them (the embedded marshaller, or an external one over
// HTTP), names and uploads the object, and sends the outcome back to the batch's loop through a
// uv_async. Nothing here blocks or delays the request path: the loop only moves records, and a
// record that does not fit within --log-queue-events / --log-queue-bytes is dropped and counted.
//
// The storage library (puller/storage/upload.h) is the agent's to compose (logger/ does not
// depend on puller/): the agent implements BlobStore and MarshallerClient with it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/util/backoff.h"
#include "core/uv/handle.h"
#include "core/uv/timer.h"
#include "logger/blob/batcher.h"
#include "logger/blob/format.h"
#include "logger/blob/key.h"
#include "logger/blob/record.h"
#include "logger/event.h"
#include "logger/logger.h"

struct uv_loop_s;
struct uv_async_s;
namespace prometheus {
class Counter;
class Gauge;
class Registry;
}  // namespace prometheus

namespace logger {

class Dispatcher;

// Where objects go: one bucket or container. Blocking; called from the upload thread only.
class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Uploads `data` as `key`, retrying transient failures itself. `error` never holds a
  // credential.
  virtual bool upload(const std::string& key, std::string_view data, const std::string& contentType,
                      const std::atomic<bool>& cancel, std::string& error) = 0;
  // "s3://bucket/key" and the like, for logs.
  virtual std::string describe(const std::string& key) const = 0;
};

// An external marshaller reached over HTTP (upstream's protocol, blob/marshaller.h). Blocking.
class MarshallerClient {
 public:
  struct Answer {
    long status = 0;  // 0: no answer (see error)
    std::string error;
    std::optional<std::string> extension;  // the X-Log-Marshal-Extension header
    std::string body;
  };
  virtual ~MarshallerClient() = default;
  virtual Answer post(const std::string& url, const std::string& body,
                      const std::atomic<bool>& cancel) = 0;
};

// What a loop gets back for a batch it handed over.
struct BlobOutcome {
  uint64_t batch = 0;
  bool uploaded = false;
  std::string error;  // why the batch was given up
};

// A loop's end of the upload thread: outcomes are queued here and the loop woken.
class BlobMailbox {
 public:
  void post(BlobOutcome outcome);
  std::vector<BlobOutcome> take();
  // Binds the loop's async handle (nullptr: the loop is gone; outcomes are discarded).
  void bind(uv_async_s* async);

 private:
  std::mutex mutex_;
  std::vector<BlobOutcome> outcomes_;
  uv_async_s* async_ = nullptr;
};

struct BlobUploadsOptions {
  blob::Format format = blob::Format::Json;
  // Empty: the embedded marshaller, called directly; else the external marshaller's URL.
  std::string marshallerUrl;
  std::string directory;  // where every object goes (blob::objectDirectory)
  // A batch whose upload failed (after the store's own retries) is tried again after these
  // waits (1 s doubling to 30 s, jittered), until it succeeds, fails for good, or the process
  // stops.
  core::Backoff retry{std::chrono::seconds(1), std::chrono::seconds(30)};
};

// The process's one upload thread.
class BlobUploads {
 public:
  BlobUploads(std::unique_ptr<BlobStore> store, std::unique_ptr<MarshallerClient> marshaller,
              BlobUploadsOptions options);
  // Gives up what is queued and in flight (transfers are cancelled) and joins the thread.
  ~BlobUploads();
  BlobUploads(const BlobUploads&) = delete;
  BlobUploads& operator=(const BlobUploads&) = delete;

  struct Job {
    uint64_t batch = 0;
    std::vector<blob::LogRequest> records;
    bool clientId = false;  // the first record's id came from the client (Ce-Id)
    std::shared_ptr<BlobMailbox> mailbox;
  };
  // Thread-safe; never blocks on an upload.
  void submit(Job job);

 private:
  void run();
  BlobOutcome process(Job& job);
  bool marshal(const std::vector<blob::LogRequest>& records, std::string& data,
               std::string& extension, std::string& contentType, std::string& error,
               bool& permanent);

  std::unique_ptr<BlobStore> store_;
  std::unique_ptr<MarshallerClient> marshaller_;
  BlobUploadsOptions options_;
  blob::ObjectKeys keys_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct BlobSinkCounters {
  uint64_t objects = 0;  // uploaded
  uint64_t records = 0;  // in uploaded objects
  uint64_t failedObjects = 0;
  size_t held = 0;  // records batched or being uploaded
};

// One loop's blob sink.
class BlobSink {
 public:
  // `accounting` counts drops (shared with the http sink's metrics and reports); its byte
  // budget bounds the payloads held here.
  BlobSink(uv_loop_s* loop, const Options& options, Dispatcher& accounting);
  ~BlobSink();
  BlobSink(const BlobSink&) = delete;
  BlobSink& operator=(const BlobSink&) = delete;

  // Takes an event (its payload lease stays with its record until the object is uploaded);
  // dropped and counted when --log-queue-events records are held already.
  void add(EventPtr event, bool clientId);
  // Hands over every waiting record and calls `done` once the uploads are over, or at
  // `deadline` (what is left is counted as dropped, "shutdown").
  void drain(std::chrono::steady_clock::time_point deadline, std::function<void()> done);

  const BlobSinkCounters& counters() const { return counters_; }

 private:
  struct Pending {
    blob::LogRequest record;
    bool clientId = false;
    ByteLease lease;
  };
  struct InFlight {
    std::vector<std::string> ids;
    std::vector<ByteLease> leases;
  };

  blob::LogRequest toRecord(Event& event) const;
  void flushDue();
  void submit(std::vector<Pending> batch);
  void armTimer();
  void onOutcomes();
  void finishDrainIfIdle();
  void setHeld(size_t held);

  uv_loop_s* loop_;
  Dispatcher& accounting_;
  std::shared_ptr<BlobUploads> uploads_;
  std::shared_ptr<BlobMailbox> mailbox_;
  size_t maxRecords_;
  // Per-process parts of every record.
  std::optional<blob::GoUrl> url_;
  std::optional<blob::GoUrl> sourceUri_;
  std::string inferenceService_;
  std::string namespace_;
  std::string component_;
  std::string endpoint_;
  blob::Annotations annotations_;
  std::string certName_;
  bool tlsSkipVerify_ = false;

  blob::Batcher<Pending> batcher_;
  core::Timer timer_;
  std::unordered_map<uint64_t, InFlight> inFlight_;
  uint64_t nextBatch_ = 0;
  BlobSinkCounters counters_;
  struct Metrics {
    prometheus::Counter* objects = nullptr;
    prometheus::Counter* records = nullptr;
    prometheus::Counter* failed = nullptr;
    prometheus::Gauge* held = nullptr;  // the http sink's queue gauge: records held here
  } metrics_;
  core::Timer drainTimer_;
  std::function<void()> drainDone_;
  bool draining_ = false;
  // Declared last: closed first, so that no outcome arrives for a sink being destroyed.
  core::OwnedHandle<uv_async_s> async_;
};

}  // namespace logger
