// Calls to https origins for core::Client, through libcurl on the loop (CurlClient): TLS with the
// system's trust store, connections kept alive per host.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "core/client/client.h"
#include "core/uv/timer.h"
#include "core_curl/curl_client.h"

namespace core_curl {

class CurlHttpsTransport final : public core::HttpsTransport {
 public:
  // `caBundle`: PEM certificates to trust instead of the system store (null: the system's);
  // `connectTimeout`: resolving and connecting (0: curl's).
  CurlHttpsTransport(uv_loop_t* loop, CurlClient::Options options,
                     std::shared_ptr<const std::string> caBundle = nullptr,
                     std::chrono::milliseconds connectTimeout = std::chrono::milliseconds(0));
  ~CurlHttpsTransport() override;

  core::UpstreamCall* send(const core::Origin& origin, core::UpstreamRequest request,
                           core::UpstreamDone done) override;
  void cancelCalls(const std::string& reason) override;

 private:
  class Call;
  void finished(Call* call);

  uv_loop_t* loop_;
  std::shared_ptr<const std::string> caBundle_;
  std::chrono::milliseconds connectTimeout_;
  CurlClient client_;
  std::unordered_map<Call*, std::unique_ptr<Call>> calls_;
};

}  // namespace core_curl
