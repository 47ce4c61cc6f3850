// The entry point of libkserve-router-https.so (see router/https.h).
#include <chrono>

#include "core_curl/ca_bundle.h"
#include "core_curl/https_transport.h"
#include "router/https.h"

namespace {

std::shared_ptr<const std::string> readCaBundle(const std::string& path) {
  return core_curl::CaBundle(path).current(std::chrono::steady_clock::now());
}

std::unique_ptr<core::HttpsTransport> makeTransport(uv_loop_s* loop,
                                                    const router::HttpsSettings& settings) {
  return std::make_unique<core_curl::CurlHttpsTransport>(
      loop,
      core_curl::CurlClient::Options{
          .maxConnectionsPerHost = static_cast<long>(settings.maxConnectionsPerHost),
          .maxResponseBytes = settings.maxResponseBytes,
          .userAgent = settings.userAgent},
      settings.caBundle, settings.connectTimeout);
}

const router::HttpsPlugin kPlugin{readCaBundle, makeTransport};

}  // namespace

extern "C" __attribute__((visibility("default"))) const router::HttpsPlugin* ksr_https_plugin() {
  return &kPlugin;
}
