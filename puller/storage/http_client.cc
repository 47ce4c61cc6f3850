#include "puller/storage/http_client.h"

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>

#include "puller/storage/progress.h"
#include "puller/storage/storage.h"

namespace storage {
namespace {

constexpr size_t kMaxMemoryBody = size_t{64} << 20;
constexpr size_t kMaxErrorBody = size_t{64} << 10;

struct Transfer {
  CURL* curl = nullptr;
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  std::string path;                // a file to create; empty with no part: keep the body in memory
  const FilePart* part = nullptr;  // or a place in a file the caller opened
  const BodySink* sink = nullptr;  // or a consumer of the stream
  FILE* file = nullptr;
  bool tooLarge = false;
  bool fileError = false;
  bool rangeIgnored = false;
  std::string otherRange;  // the Content-Range of a 206 for a range not asked for
  bool sinkStopped = false;

  bool inMemory() const { return path.empty() && part == nullptr && sink == nullptr; }
};

void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Writes a chunk at its place in the caller's file.
size_t writePart(Transfer* transfer, const char* data, size_t length, long status) {
  const FilePart& part = *transfer->part;
  uint64_t before = transfer->response->bytes;
  if (!part.range.empty() && status != 206) {
    transfer->rangeIgnored = true;
    return 0;
  }
  if (!part.range.empty() && before == 0) {
    curl_header* header = nullptr;
    std::string answered;
    if (curl_easy_header(transfer->curl, "Content-Range", 0, CURLH_HEADER, -1, &header) ==
        CURLHE_OK) {
      answered = header->value;
    }
    if (!answered.starts_with(part.range + "/")) {
      transfer->otherRange = answered.empty() ? "none" : answered;
      return 0;
    }
  }
  for (size_t written = 0; written < length;) {
    ssize_t n = ::pwrite(part.fd, data + written, length - written,
                         static_cast<off_t>(part.offset + before + written));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      transfer->fileError = true;
      return 0;
    }
    written += static_cast<size_t>(n);
  }
  countDownloaded(transfer->curl, part.path, part.offset, before, length);
  transfer->response->bytes += length;
  return length;
}

size_t onWrite(char* data, size_t size, size_t count, void* userdata) {
  auto* transfer = static_cast<Transfer*>(userdata);
  size_t length = size * count;
  long status = 0;
  curl_easy_getinfo(transfer->curl, CURLINFO_RESPONSE_CODE, &status);
  bool success = status >= 200 && status < 300;
  if (success && transfer->part != nullptr) return writePart(transfer, data, length, status);
  if (success && transfer->sink != nullptr) {
    if (!transfer->sink->consume(std::string_view(data, length))) {
      transfer->sinkStopped = true;
      return 0;
    }
    countDownloaded(transfer->curl, transfer->sink->name, 0, transfer->response->bytes, length);
    transfer->response->bytes += length;
    return length;
  }
  if (success && !transfer->path.empty()) {
    if (transfer->file == nullptr) {
      transfer->file = std::fopen(transfer->path.c_str(), "wb");
      if (transfer->file == nullptr) {
        transfer->fileError = true;
        return 0;
      }
    }
    if (std::fwrite(data, 1, length, transfer->file) != length) {
      transfer->fileError = true;
      return 0;
    }
    countDownloaded(transfer->curl, transfer->path, 0, transfer->response->bytes, length);
    transfer->response->bytes += length;
    return length;
  }
  std::string& body = transfer->response->body;
  size_t limit = transfer->inMemory() ? kMaxMemoryBody : kMaxErrorBody;
  if (body.size() + length > limit) {
    if (transfer->inMemory()) {
      transfer->tooLarge = true;
      return 0;
    }
    body.append(data, limit - body.size());  // error bodies are only read for their start
    return length;
  }
  body.append(data, length);
  return length;
}

int onProgress(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* transfer = static_cast<Transfer*>(userdata);
  const auto* cancel = transfer->request->cancel;
  return cancel != nullptr && cancel->load() ? 1 : 0;
}

// Adds the request's extra CA files to the trust store curl has already loaded, so that a private
// CA extends the system store instead of replacing it (CURLOPT_CAINFO would replace it).
CURLcode addExtraCas(CURL*, void* sslContext, void* userdata) {
  const auto* request = static_cast<const HttpRequest*>(userdata);
  X509_STORE* store = SSL_CTX_get_cert_store(static_cast<SSL_CTX*>(sslContext));
  for (const auto& file : request->extraCaFiles) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(file.c_str(), "r"), BIO_free);
    if (!bio) {
      ERR_clear_error();
      return CURLE_SSL_CACERT_BADFILE;
    }
    int added = 0;
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      X509_STORE_add_cert(store, cert);  // a certificate already present is not an error
      X509_free(cert);
      ++added;
    }
    ERR_clear_error();  // the end of the file reads as an error
    if (added == 0) return CURLE_SSL_CACERT_BADFILE;
  }
  return CURLE_OK;
}

bool isLoopbackHost(std::string host) {
  for (char& c : host)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return host == "localhost" || host.ends_with(".localhost") || host.starts_with("127.") ||
         host == "::1" || host == "[::1]";
}

// Proxies as Go's net/http does: loopback is never proxied (the puller's load/unload calls to
// the model server), and HTTP_PROXY in capitals applies to http:// URLs (libcurl reads only the
// lower-case http_proxy there, on purpose, for CGI programs: so do we when REQUEST_METHOD is
// set, as Go). The rest (https_proxy/HTTPS_PROXY, no_proxy/NO_PROXY) is libcurl's own handling.
void applyProxy(CURL* h, const std::string& url) {
  CURLU* parsed = curl_url();
  char* host = nullptr;
  bool loopback = false;
  if (curl_url_set(parsed, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(parsed, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    loopback = isLoopbackHost(host);
  }
  curl_free(host);
  curl_url_cleanup(parsed);
  if (loopback) {
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    return;
  }
  if (url.starts_with("http://") && std::getenv("http_proxy") == nullptr &&
      std::getenv("REQUEST_METHOD") == nullptr) {
    const char* upper = std::getenv("HTTP_PROXY");
    if (upper != nullptr && *upper != '\0') curl_easy_setopt(h, CURLOPT_PROXY, upper);
  }
}

// This thread's easy handle, reset for a new request: the reset keeps its connections, TLS
// sessions and DNS answers for the next request. Cleaned up when the thread ends.
CURL* threadHandle() {
  struct Handle {
    CURL* curl = nullptr;
    ~Handle() {
      if (curl != nullptr) curl_easy_cleanup(curl);
    }
  };
  thread_local Handle handle;
  if (handle.curl == nullptr) {
    handle.curl = curl_easy_init();
  } else {
    curl_easy_reset(handle.curl);
  }
  return handle.curl;
}

HttpResponse perform(const HttpRequest& request, const std::string& path, const FilePart* part,
                     const BodySink* sink = nullptr) {
  initCurlOnce();
  HttpResponse response;
  CURL* h = threadHandle();
  if (h == nullptr) {
    response.error = "cannot create a curl handle";
    return response;
  }
  Transfer transfer;
  transfer.curl = h;
  transfer.request = &request;
  transfer.response = &response;
  transfer.path = path;
  transfer.part = part;
  transfer.sink = sink;
  curl_slist* headers = nullptr;
  for (const auto& header : request.headers)
    headers = curl_slist_append(headers, header.c_str());
  // libcurl would add "Expect: 100-continue" to larger bodies, which costs a round trip.
  headers = curl_slist_append(headers, "Expect:");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headerList(headers,
                                                                         curl_slist_free_all);
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  // Object keys are paths as written ("a/./b" is not "a/b"), and what was signed is what is sent.
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headerList.get());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, onWrite);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, onProgress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &transfer);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connectTimeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(request.stallTimeout.count()));
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, request.followRedirects ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, request.verifyTls ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, request.verifyTls ? 2L : 0L);
  if (!request.caFile.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, request.caFile.c_str());
  if (request.verifyTls && !request.extraCaFiles.empty()) {
    curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, addExtraCas);
    curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, &request);
  }
  applyProxy(h, request.url);
  if (!request.clientCertFile.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, request.clientCertFile.c_str());
  }
  if (!request.clientKeyFile.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLKEY, request.clientKeyFile.c_str());
  }
  if (request.negotiate) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_NEGOTIATE);
    curl_easy_setopt(h, CURLOPT_USERPWD, ":");  // the identity comes from the ticket cache
  }
  if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    const std::string_view body =
        request.payload.data() != nullptr ? request.payload : std::string_view(request.body);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }

  CURLcode code = curl_easy_perform(h);
  if (transfer.file != nullptr && std::fclose(transfer.file) != 0) transfer.fileError = true;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  char* contentType = nullptr;
  curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &contentType);
  if (contentType != nullptr) response.contentType = contentType;
  curl_header* etag = nullptr;
  if (curl_easy_header(h, "ETag", 0, CURLH_HEADER, -1, &etag) == CURLHE_OK) {
    response.etag = etag->value;
  }
  curl_header* range = nullptr;
  if (curl_easy_header(h, "Content-Range", 0, CURLH_HEADER, -1, &range) == CURLHE_OK) {
    response.contentRange = range->value;
  }
  curl_header* challenge = nullptr;
  if (curl_easy_header(h, "WWW-Authenticate", 0, CURLH_HEADER, -1, &challenge) == CURLHE_OK) {
    response.wwwAuthenticate = challenge->value;
  }
  curl_header* region = nullptr;
  if (curl_easy_header(h, "x-amz-bucket-region", 0, CURLH_HEADER, -1, &region) == CURLHE_OK) {
    response.bucketRegion = region->value;
  }
  // A successful download of an empty object never calls onWrite; the file must still exist.
  if (code == CURLE_OK && !path.empty() && response.status >= 200 && response.status < 300 &&
      response.bytes == 0) {
    FILE* empty = std::fopen(path.c_str(), "wb");
    if (empty == nullptr || std::fclose(empty) != 0) transfer.fileError = true;
  }
  if (code != CURLE_OK || transfer.fileError) {
    response.permanent = transfer.fileError || transfer.rangeIgnored ||
                         !transfer.otherRange.empty() || transfer.sinkStopped;
    if (transfer.sinkStopped) {
      response.error = "the reader of " + sink->name + " stopped";
    } else if (transfer.fileError) {
      response.error = "cannot write " + (part != nullptr ? part->path : path);
    } else if (transfer.rangeIgnored) {
      response.error = "the server answered a ranged GET with the whole object (HTTP " +
                       std::to_string(response.status) +
                       "): it takes no ranges, or the object changed meanwhile";
    } else if (!transfer.otherRange.empty()) {
      response.error = "the server answered another range than " + part->range +
                       " (Content-Range: " + transfer.otherRange + ")";
    } else if (transfer.tooLarge) {
      response.error = "response body larger than 64 MiB";
    } else if (code == CURLE_ABORTED_BY_CALLBACK) {
      response.error = "cancelled";
      response.cancelled = true;
    } else {
      response.error = curl_easy_strerror(code);
    }
    // A transfer that broke after the answer started is a transport failure as a whole.
    response.status = 0;
  }
  return response;
}

}  // namespace

HttpResponse httpFetch(const HttpRequest& request) {
  return perform(request, "", nullptr);
}

HttpResponse httpFetchToFile(const HttpRequest& request, const std::string& path) {
  return perform(request, path, nullptr);
}

HttpResponse httpFetchToPart(const HttpRequest& request, const FilePart& part) {
  return perform(request, "", &part);
}

HttpResponse httpFetchToSink(const HttpRequest& request, const BodySink& sink) {
  return perform(request, "", nullptr, &sink);
}

bool retryableAnswer(const HttpResponse& response) {
  if (response.cancelled || response.permanent) return false;
  if (!response.error.empty()) return true;
  return response.status == 408 || response.status == 429 || response.status >= 500;
}

bool sleepUnlessCancelled(std::chrono::milliseconds delay, const std::atomic<bool>* cancel) {
  const auto end = std::chrono::steady_clock::now() + delay;
  while (cancel == nullptr || !cancel->load()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(20), end - now));
  }
  return false;
}

std::string describeFailure(const HttpRequest& request, const HttpResponse& response) {
  std::string what = request.method + " " + redactUri(request.url) + ": ";
  if (!response.error.empty()) return what + response.error;
  return what + "HTTP " + std::to_string(response.status);
}

}  // namespace storage
