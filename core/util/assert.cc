#include "core/util/assert.h"

#include <cstdio>
#include <cstdlib>

namespace core {

void assertionFailed(const char* file, int line, const char* condition) {
  std::fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, condition);
  std::fflush(stderr);
  std::abort();
}

}  // namespace core
