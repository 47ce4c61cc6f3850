// Blocking HTTP for the storage providers and the puller's load/unload calls: one libcurl easy
// handle per thread, reused so that a thread's requests share connections (a model's files and
// parts each cost a TLS handshake otherwise), bodies either kept in memory (listings, tokens;
// capped) or streamed to a file (objects; bounded memory whatever the size). Headers and bodies are
// never logged.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace storage {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  // A body the caller keeps alive for the request (uploads: no copy of a large object); sent
  // instead of `body` when it points somewhere.
  std::string_view payload;
  bool verifyTls = true;
  std::string caFile;  // PEM bundle that replaces the system store; "" means the system store
  // PEM bundles whose certificates are added to the store above (which stays in use): the CA
  // bundle ConfigMap, AWS_CA_BUNDLE. An unreadable file fails the request.
  std::vector<std::string> extraCaFiles;
  // A TLS client certificate and its key (PEM files), for servers that ask for one (WebHDFS).
  std::string clientCertFile;
  std::string clientKeyFile;
  // Kerberos SPNEGO ("Negotiate") with the default credential cache (WebHDFS on secure clusters).
  bool negotiate = false;
  bool followRedirects = false;
  std::chrono::milliseconds connectTimeout{std::chrono::seconds(15)};
  // Whole-transfer limit; zero means none, so large objects are bounded by the stall limit only.
  std::chrono::milliseconds timeout{0};
  // A transfer slower than 1 KiB/s for this long is aborted.
  std::chrono::seconds stallTimeout{60};
  const std::atomic<bool>* cancel = nullptr;  // aborts the transfer when it becomes true
};

struct HttpResponse {
  long status = 0;    // 0 when no HTTP answer arrived (see error)
  std::string error;  // transport error text, "" when an answer arrived
  std::string body;   // in-memory body, or the start of an error body for file downloads
  std::string contentType;
  std::string etag;             // the ETag header (S3 multipart uploads need each part's)
  std::string bucketRegion;     // the x-amz-bucket-region header (S3's region redirects)
  std::string wwwAuthenticate;  // the (first) WWW-Authenticate header of a 401
  std::string contentRange;     // the Content-Range header of a 206 ("bytes 0-99/1000")
  uint64_t bytes = 0;           // bytes written to the file for file downloads
  bool cancelled = false;
  // Sending the request again cannot help: the file cannot be written, or the server ignores
  // the Range asked for.
  bool permanent = false;
  bool ok() const { return error.empty() && status >= 200 && status < 300; }
};

// Performs the request and keeps the body in memory (up to 64 MiB, then fails).
HttpResponse httpFetch(const HttpRequest& request);
// Performs the request; a 2xx body is streamed into `path` (created or truncated), any other
// body is kept (its first 64 KiB) in the response for error messages.
HttpResponse httpFetchToFile(const HttpRequest& request, const std::string& path);

// Where a body goes in a file the caller opened: written from `offset` on (pwrite), so that the
// parts of one object land in place from several transfers at once.
struct FilePart {
  int fd = -1;
  std::string path;  // the file's path, for progress and messages
  uint64_t offset = 0;
  // For a ranged request, the range asked for as Content-Range writes it ("bytes 0-99"): only a
  // 206 naming that range is written; a 200 (a server that ignores Range sends the whole
  // object) or another range fails the transfer instead of corrupting the file.
  std::string range;
};

// Performs the request; a 2xx body is written into the part, any other body is kept (its first
// 64 KiB) in the response for error messages.
HttpResponse httpFetchToPart(const HttpRequest& request, const FilePart& part);

// Where a body goes as it arrives (an image layer unpacked while it downloads).
struct BodySink {
  std::string name;  // for progress lines and messages
  // Takes the next chunk of a 2xx body; false stops the transfer (a permanent failure).
  std::function<bool(std::string_view)> consume;
};

// Performs the request; a 2xx body is handed to the sink chunk by chunk, any other body is kept
// (its first 64 KiB) in the response for error messages. `bytes` counts what the sink took.
HttpResponse httpFetchToSink(const HttpRequest& request, const BodySink& sink);

// Whether a failed answer may succeed when the request is sent again: no answer (unless
// cancelled or permanent), 408, 429 and 5xx.
bool retryableAnswer(const HttpResponse& response);

// Sleeps `delay` in short steps; false when `cancel` is set meanwhile (or was already).
bool sleepUnlessCancelled(std::chrono::milliseconds delay, const std::atomic<bool>* cancel);

// "METHOD url: cause" for a failed response, with the URL's query and credentials removed.
std::string describeFailure(const HttpRequest& request, const HttpResponse& response);

}  // namespace storage
