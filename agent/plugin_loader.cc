#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "agent/plugin.h"

namespace agent {

namespace {

constexpr const char* kLibraryName = "libkserve-agent-modules.so";

std::string executableDirectory() {
  char path[PATH_MAX] = {};
  ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) return ".";
  std::string text(path, static_cast<size_t>(length));
  size_t slash = text.rfind('/');
  return slash == std::string::npos ? "." : text.substr(0, slash);
}

}  // namespace

const ModulePlugin* loadModulePlugin(std::string& error) {
  static const ModulePlugin* loaded = nullptr;
  if (loaded != nullptr) return loaded;
  const char* dir = std::getenv("KSA_MODULES_DIR");
  std::string path = (dir != nullptr && *dir != '\0' ? std::string(dir) : executableDirectory()) +
                     "/" + kLibraryName;
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = ::dlerror();
    error = "cannot load " + path + ": " + (reason != nullptr ? reason : "unknown error");
    return nullptr;
  }
  auto entry = reinterpret_cast<const ModulePlugin* (*)()>(::dlsym(handle, "ksa_module_plugin"));
  if (entry == nullptr) {
    error = path + " has no ksa_module_plugin entry point";
    return nullptr;
  }
  loaded = entry();
  return loaded;
}

}  // namespace agent
