#include "core/util/shared_library.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

namespace core {

namespace {

std::string executableFolder() {
  char path[PATH_MAX] = {};
  ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) return ".";
  std::string text(path, static_cast<size_t>(length));
  size_t slash = text.rfind('/');
  return slash == std::string::npos ? "." : text.substr(0, slash);
}

}  // namespace

void* loadBesideExecutable(const std::string& name, const char* folderVariable,
                           const char* entryPoint, std::string& error) {
  const char* folder = std::getenv(folderVariable);
  std::string path =
      (folder != nullptr && *folder != '\0' ? std::string(folder) : executableFolder()) + "/" +
      name;
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = ::dlerror();
    error = "cannot load " + path + ": " + (reason != nullptr ? reason : "unknown error");
    return nullptr;
  }
  void* entry = ::dlsym(handle, entryPoint);
  if (entry == nullptr) error = path + " has no " + entryPoint + " entry point";
  return entry;
}

}  // namespace core
