#include "core_curl/curl_client.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <array>
#include <mutex>

namespace core_curl {

using core::iequals;
using core::trimSpace;

namespace {

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

struct CurlClient::Transfer {
  uint64_t id = 0;
  CurlRequest request;
  Done done;
  std::unique_ptr<CURL, EasyDeleter> easy;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  std::string responseBody;
  Headers responseHeaders;
  size_t maxResponseBytes = 0;
  bool bodyTooLarge = false;
  std::array<char, CURL_ERROR_SIZE> error{};
};

// One socket curl asked us to watch. Freed in the close callback of its poll handle.
struct CurlClient::SocketWatch {
  uv_poll_t poll{};
  curl_socket_t fd = CURL_SOCKET_BAD;
  CurlClient* client = nullptr;
};

// Keeps the start of the response body (sinks answer with little or nothing) and drops the rest,
// or fails the transfer when the request asked for the whole body within a bound.
size_t CurlClient::onBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t bytes = size * count;
  size_t room = transfer->maxResponseBytes -
                std::min(transfer->maxResponseBytes, transfer->responseBody.size());
  if (bytes > room && transfer->request.failOnLargeBody) {
    transfer->bodyTooLarge = true;
    return 0;  // curl then ends the transfer with CURLE_WRITE_ERROR
  }
  transfer->responseBody.append(data, std::min(bytes, room));
  return bytes;
}

// Collects the header fields of the last answer (an interim 100 or a redirect starts anew).
size_t CurlClient::onHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t bytes = size * count;
  std::string_view line(data, bytes);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
    line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    transfer->responseHeaders.clear();
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos && colon > 0) {
    transfer->responseHeaders.push_back(
        {std::string(line.substr(0, colon)), std::string(trimSpace(line.substr(colon + 1)))});
  }
  return bytes;
}

void CurlClient::MultiDeleter::operator()(void* multi) const {
  curl_multi_cleanup(multi);
}

CurlClient::CurlClient(uv_loop_s* loop, Options options)
    : loop_(loop), options_(std::move(options)), timer_(loop) {
  initCurlOnce();
  multi_.reset(curl_multi_init());
  CURLM* multi = multi_.get();
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &CurlClient::onSocket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &CurlClient::onCurlTimer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, options_.maxConnectionsPerHost);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, options_.maxConnectionsPerHost);
  curl_multi_setopt(multi, CURLMOPT_PIPELINING, long{CURLPIPE_NOTHING});
}

CurlClient::~CurlClient() {
  for (auto& [id, transfer] : transfers_)
    curl_multi_remove_handle(multi_.get(), transfer->easy.get());
  transfers_.clear();
  // Cleaning up the multi handle closes cached connections; curl may still call onSocket for
  // them, so this runs while every member is alive. Watches curl did not remove are closed here.
  multi_.reset();
  while (!watches_.empty())
    closeWatch(*watches_.begin());
}

uint64_t CurlClient::send(CurlRequest request, Done done) {
  auto transfer = std::make_unique<Transfer>();
  transfer->id = nextId_++;
  transfer->request = std::move(request);
  transfer->done = std::move(done);
  transfer->maxResponseBytes = transfer->request.maxResponseBytes != 0
                                   ? transfer->request.maxResponseBytes
                                   : options_.maxResponseBytes;
  transfer->easy.reset(curl_easy_init());
  CURL* easy = transfer->easy.get();
  if (easy == nullptr) return 0;
  const CurlRequest& r = transfer->request;

  curl_slist* list = nullptr;
  bool hasContentType = false;
  for (const auto& header : r.headers) {
    hasContentType = hasContentType || iequals(header.name, "Content-Type");
    // "Name;" is curl's spelling of a header with an empty value ("Name:" would remove it).
    std::string line = header.value.empty() ? header.name + ";" : header.name + ": " + header.value;
    list = curl_slist_append(list, line.c_str());
  }
  // Without these curl would add its form Content-Type, "Accept: */*", and wait for a
  // 100-continue before large bodies.
  if (!hasContentType) list = curl_slist_append(list, "Content-Type:");
  list = curl_slist_append(list, "Accept:");
  list = curl_slist_append(list, "Expect:");
  transfer->headers.reset(list);

  CURLcode setup = CURLE_OK;
  auto set = [&](CURLoption option, auto value) {
    if (setup == CURLE_OK) setup = curl_easy_setopt(easy, option, value);
  };
  set(CURLOPT_URL, r.url.c_str());
  set(CURLOPT_PRIVATE, static_cast<void*>(transfer.get()));
  set(CURLOPT_HTTPHEADER, list);
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_HTTP_VERSION, long{CURL_HTTP_VERSION_1_1});
  set(CURLOPT_PROTOCOLS_STR, "http,https");
  set(CURLOPT_USERAGENT, options_.userAgent.c_str());
  set(CURLOPT_ERRORBUFFER, transfer->error.data());
  set(CURLOPT_WRITEFUNCTION, &CurlClient::onBody);
  set(CURLOPT_WRITEDATA, static_cast<void*>(transfer.get()));
  set(CURLOPT_HEADERFUNCTION, &CurlClient::onHeader);
  set(CURLOPT_HEADERDATA, static_cast<void*>(transfer.get()));
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout.count()));
  if (r.connectTimeout.count() > 0) {
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connectTimeout.count()));
  }
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  if (r.method == "POST") {
    set(CURLOPT_POST, 1L);
  } else if (r.method == "GET") {
    set(CURLOPT_HTTPGET, 1L);
  } else {
    set(CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  if (r.body) {
    set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    set(CURLOPT_POSTFIELDS, r.body.data());
  }
  if (r.caBundle) {
    curl_blob blob{const_cast<char*>(r.caBundle->data()), r.caBundle->size(), CURL_BLOB_NOCOPY};
    set(CURLOPT_CAINFO_BLOB, &blob);
  }
  if (r.skipTlsVerify) {
    set(CURLOPT_SSL_VERIFYPEER, 0L);
    set(CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (setup != CURLE_OK) {
    spdlog::error("http client: cannot set up a request to {}: {}", r.url,
                  curl_easy_strerror(setup));
    return 0;
  }
  if (curl_multi_add_handle(multi_.get(), easy) != CURLM_OK) return 0;
  uint64_t id = transfer->id;
  transfers_.emplace(id, std::move(transfer));
  return id;
}

bool CurlClient::cancel(uint64_t id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return false;
  curl_multi_remove_handle(multi_.get(), it->second->easy.get());
  transfers_.erase(it);
  return true;
}

int CurlClient::onSocket(void* easy, int fd, int what, void* clientPtr, void* watchPtr) {
  (void)easy;
  auto* client = static_cast<CurlClient*>(clientPtr);
  auto* watch = static_cast<SocketWatch*>(watchPtr);
  if (what == CURL_POLL_REMOVE) {
    if (watch != nullptr) {
      curl_multi_assign(client->multi_.get(), fd, nullptr);
      client->closeWatch(watch);
    }
    return 0;
  }
  if (watch == nullptr) {
    watch = new SocketWatch;
    watch->fd = fd;
    watch->client = client;
    watch->poll.data = watch;
    int status = uv_poll_init_socket(client->loop_, &watch->poll, fd);
    if (status != 0) {
      // A handle that failed to initialise was never registered with the loop.
      spdlog::error("http client: cannot watch socket {}: {}", fd, uv_strerror(status));
      delete watch;
      return -1;
    }
    client->watches_.insert(watch);
    curl_multi_assign(client->multi_.get(), fd, watch);
  }
  int events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
  uv_poll_start(&watch->poll, events, [](uv_poll_t* handle, int status, int ready) {
    auto* w = static_cast<SocketWatch*>(handle->data);
    int flags = 0;
    if (status < 0) flags |= CURL_CSELECT_ERR;
    if ((ready & UV_READABLE) != 0) flags |= CURL_CSELECT_IN;
    if ((ready & UV_WRITABLE) != 0) flags |= CURL_CSELECT_OUT;
    // The watch may be closed by the action; only its copied fields are used.
    w->client->socketAction(w->fd, flags);
  });
  return 0;
}

int CurlClient::onCurlTimer(void* multi, long timeoutMs, void* clientPtr) {
  (void)multi;
  auto* client = static_cast<CurlClient*>(clientPtr);
  if (timeoutMs < 0) {
    client->timer_.stop();
  } else {
    // curl asks not to be called back from inside this function, so 0 means "next loop turn".
    client->timer_.start(std::chrono::milliseconds(timeoutMs),
                         [client] { client->socketAction(CURL_SOCKET_TIMEOUT, 0); });
  }
  return 0;
}

void CurlClient::socketAction(int fd, int flags) {
  int running = 0;
  curl_multi_socket_action(multi_.get(), fd, flags, &running);
  finishCompleted();
}

void CurlClient::finishCompleted() {
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_.get(), &queued)) {
    if (message->msg != CURLMSG_DONE) continue;
    CURL* easy = message->easy_handle;
    CURLcode code = message->data.result;
    void* privatePtr = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &privatePtr);
    auto* transfer = static_cast<Transfer*>(privatePtr);
    CurlResult result;
    long connects = 0;
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
    connectionsOpened_ += static_cast<uint64_t>(std::max(connects, 0L));
    if (code == CURLE_OK) {
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &result.status);
      result.headers = std::move(transfer->responseHeaders);
    } else if (transfer->bodyTooLarge) {
      result.error = "the response body is larger than " +
                     std::to_string(transfer->maxResponseBytes) + " bytes";
    } else {
      result.timedOut = code == CURLE_OPERATION_TIMEDOUT;
      result.error = transfer->error[0] != '\0' ? std::string(transfer->error.data())
                                                : std::string(curl_easy_strerror(code));
    }
    curl_multi_remove_handle(multi_.get(), easy);
    auto node = transfers_.extract(transfer->id);
    result.body = std::move(node.mapped()->responseBody);
    Done done = std::move(node.mapped()->done);
    node.mapped().reset();
    // The callback may start or cancel transfers; curl's message queue stays valid for that.
    if (done) done(std::move(result));
  }
}

void CurlClient::closeWatch(SocketWatch* watch) {
  watches_.erase(watch);
  uv_poll_stop(&watch->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&watch->poll),
           [](uv_handle_t* handle) { delete static_cast<SocketWatch*>(handle->data); });
}

}  // namespace core_curl
