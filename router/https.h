// https steps go through libcurl (core_curl), built into libkserve-router-https.so and loaded
// only when the graph has an https step or --ca-file is given: mapping libcurl and its TLS,
// GSS-API and LDAP dependencies and running their initialisers would more than double the
// router's idle memory, and most graphs call plain http services inside the cluster.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "core/client/client.h"

struct uv_loop_s;

namespace router {

struct HttpsSettings {
  size_t maxConnectionsPerHost = 0;
  size_t maxResponseBytes = 0;
  std::string userAgent;
  std::chrono::milliseconds connectTimeout{0};  // 0: curl's
  // PEM certificates to trust besides the system's (--ca-file); null: the system's only.
  std::shared_ptr<const std::string> caBundle;
};

struct HttpsPlugin {
  // The system roots followed by the certificates of `path`; null when the file is missing or
  // holds no PEM certificate.
  std::shared_ptr<const std::string> (*readCaBundle)(const std::string& path);
  std::unique_ptr<core::HttpsTransport> (*makeTransport)(uv_loop_s* loop,
                                                         const HttpsSettings& settings);
};

// Loads the plugin from the executable's folder (or $KSR_HTTPS_DIR); nullptr with `error` set
// when it cannot be loaded.
const HttpsPlugin* loadHttpsPlugin(std::string& error);

}  // namespace router

// The plugin's one exported symbol.
extern "C" const router::HttpsPlugin* ksr_https_plugin();
