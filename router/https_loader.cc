#include "core/util/shared_library.h"
#include "router/https.h"

namespace router {

const HttpsPlugin* loadHttpsPlugin(std::string& error) {
  static const HttpsPlugin* loaded = nullptr;
  if (loaded != nullptr) return loaded;
  void* entry = core::loadBesideExecutable("libkserve-router-https.so", "KSR_HTTPS_DIR",
                                           "ksr_https_plugin", error);
  if (entry == nullptr) return nullptr;
  loaded = reinterpret_cast<const HttpsPlugin* (*)()>(entry)();
  return loaded;
}

}  // namespace router
