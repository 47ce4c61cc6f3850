#include "agent/plugin.h"
#include "core/util/shared_library.h"

namespace agent {

const ModulePlugin* loadModulePlugin(std::string& error) {
  static const ModulePlugin* loaded = nullptr;
  if (loaded != nullptr) return loaded;
  void* entry = core::loadBesideExecutable("libkserve-agent-modules.so", "KSA_MODULES_DIR",
                                           "ksa_module_plugin", error);
  if (entry == nullptr) return nullptr;
  loaded = reinterpret_cast<const ModulePlugin* (*)()>(entry)();
  return loaded;
}

}  // namespace agent
