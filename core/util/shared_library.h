// A shared library shipped beside the executable, loaded when a feature needs it: the agent's
// modules (libcurl, libarchive, OpenSSL for the logger and the puller) and the router's https
// transport (libcurl) stay unmapped, and their initialisers unrun, in a process that does not
// use them.
#pragma once

#include <string>

namespace core {

// Opens `name` from the folder named by the environment variable `folderVariable` when it is set
// and not empty, else from the executable's folder, with every symbol resolved now. Returns the
// address of its `entryPoint`, or nullptr with `error` set. The library stays loaded for the life
// of the process.
void* loadBesideExecutable(const std::string& name, const char* folderVariable,
                           const char* entryPoint, std::string& error);

}  // namespace core
