// Built into libkserve-agent-modules.so: adapts the logger and the puller to the core's view, and
// composes the logger's blob sinks with the storage library (logger/ does not depend on puller/).
#include "agent/plugin.h"

#include <curl/curl.h>

#include <cctype>

#include "core/http/head.h"
#include "logger/blob/key.h"
#include "logger/blob/marshaller.h"
#include "logger/blob_sink.h"
#include "puller/storage/upload.h"

namespace {

class PullerAdapter final : public agent::ModelPuller {
 public:
  explicit PullerAdapter(puller::Options options) : puller_(std::move(options)) {}
  void start() override { puller_.start(); }
  bool initialModelsReady() const override { return puller_.initialModelsReady(); }
  void stop() override { puller_.stop(); }

 private:
  puller::Puller puller_;
};

// The logger's object store on storage::Uploader (S3 PutObject or multipart, GCS media upload,
// Azure Put Blob; each request retried with backoff there).
class UploaderStore final : public logger::BlobStore {
 public:
  explicit UploaderStore(std::unique_ptr<storage::Uploader> uploader)
      : uploader_(std::move(uploader)) {}
  bool upload(const std::string& key, std::string_view data, const std::string& contentType,
              const std::atomic<bool>& cancel, std::string& error) override {
    storage::UploadOptions options;
    options.cancel = &cancel;
    storage::Status status = uploader_->upload(key, data, contentType, options);
    if (!status.ok) error = status.message;
    return status.ok;
  }
  std::string describe(const std::string& key) const override { return uploader_->describe(key); }

 private:
  std::unique_ptr<storage::Uploader> uploader_;
};

// An external marshaller, POSTed to with libcurl (upstream's client: 30 s per request).
class CurlMarshaller final : public logger::MarshallerClient {
 public:
  Answer post(const std::string& url, const std::string& body,
              const std::atomic<bool>& cancel) override {
    Answer answer;
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) {
      answer.error = "cannot make a curl handle";
      return answer;
    }
    curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headerList(headers,
                                                                           curl_slist_free_all);
    Context context{&answer, &cancel};
    CURL* h = curl.get();
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headerList.get());
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &CurlMarshaller::onBody);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &context);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &CurlMarshaller::onHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &context);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &CurlMarshaller::onProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &context);
    CURLcode code = curl_easy_perform(h);
    if (code != CURLE_OK) {
      answer.status = 0;
      answer.error = curl_easy_strerror(code);
      return answer;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &answer.status);
    return answer;
  }

 private:
  // Objects are at most what the logger holds, which --log-queue-bytes bounds; an answer far
  // larger than that is a broken marshaller.
  static constexpr size_t kMaxAnswer = size_t{4} << 30;

  struct Context {
    Answer* answer;
    const std::atomic<bool>* cancel;
  };

  static size_t onBody(char* data, size_t size, size_t count, void* user) {
    auto* context = static_cast<Context*>(user);
    size_t bytes = size * count;
    if (context->answer->body.size() + bytes > kMaxAnswer) return 0;
    context->answer->body.append(data, bytes);
    return bytes;
  }

  static size_t onHeader(char* data, size_t size, size_t count, void* user) {
    auto* context = static_cast<Context*>(user);
    std::string_view line(data, size * count);
    if (line.starts_with("HTTP/")) {
      // A new answer (after a 1xx): forget the headers of the previous one.
      context->answer->extension.reset();
      return line.size();
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return line.size();
    if (core::iequals(line.substr(0, colon), logger::blob::kExtensionHeader)) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back())))
        value.remove_suffix(1);
      context->answer->extension = std::string(value);
    }
    return line.size();
  }

  static int onProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<Context*>(user)->cancel->load() ? 1 : 0;
  }
};

// Whether `url` is the embedded marshaller's own address (upstream's default
// http://localhost:9083/marshal): then the records are marshalled in place, the same bytes
// without the HTTP and JSON hop.
bool isEmbeddedMarshaller(const std::string& url, int port) {
  const std::string tail = ":" + std::to_string(port);
  for (std::string_view host : {"localhost", "127.0.0.1", "[::1]"}) {
    std::string origin = "http://" + std::string(host) + tail;
    if (url == origin || url.starts_with(origin + "/")) return true;
  }
  return false;
}

bool prepareLogger(logger::Options& options, std::string& error) {
  if (!logger::blob::looksLikeBlobUrl(options.logUrl)) return true;
  logger::blob::BlobLocation location;
  if (!logger::blob::parseBlobUrl(options.logUrl, location, error)) return false;
  std::optional<logger::blob::Format> format = logger::blob::parseFormat(options.logStoreFormat);
  if (!format) {
    error = "unknown --log-store-format \"" + options.logStoreFormat + "\"";
    return false;
  }
  logger::BlobUploadsOptions uploads;
  uploads.format = *format;
  if (!logger::blob::objectDirectory(location.prefix, options.namespace_, options.inferenceService,
                                     options.component, options.logStorePath, uploads.directory,
                                     error)) {
    return false;
  }
  if (!isEmbeddedMarshaller(options.logMarshallerUrl, options.logMarshallerPort)) {
    uploads.marshallerUrl = options.logMarshallerUrl;
  }
  storage::UploadTarget target;
  switch (location.provider) {
    case logger::blob::Provider::S3:
      target.service = storage::BlobService::S3;
      break;
    case logger::blob::Provider::Gcs:
      target.service = storage::BlobService::Gcs;
      break;
    case logger::blob::Provider::Azure:
      target.service = storage::BlobService::Azure;
      break;
  }
  target.bucket = location.bucket;
  target.azureAccount = location.account;
  std::unique_ptr<storage::Uploader> uploader = storage::Uploader::create(target, error);
  if (!uploader) return false;
  options.blobUploads =
      std::make_shared<logger::BlobUploads>(std::make_unique<UploaderStore>(std::move(uploader)),
                                            std::make_unique<CurlMarshaller>(), std::move(uploads));
  return true;
}

std::unique_ptr<core::Filter> makeLogger(const core::FilterContext& context,
                                         const logger::Options& options) {
  return logger::makeLogger(context, options);
}

std::unique_ptr<agent::ModelPuller> makePuller(const puller::Options& options) {
  return std::make_unique<PullerAdapter>(options);
}

const agent::ModulePlugin kPlugin{prepareLogger, makeLogger, makePuller};

}  // namespace

extern "C" __attribute__((visibility("default"))) const agent::ModulePlugin* ksa_module_plugin() {
  return &kPlugin;
}
