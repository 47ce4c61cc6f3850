// Invariant checks. A broken invariant on the request path would otherwise corrupt state
// silently (an exchange answered twice, a connection handed to two owners), so it stops the
// process loudly instead, naming the file, line and condition.
//
// KSA_ASSERT is compiled in unless NDEBUG is defined: debug and sanitizer builds (CI's) check
// it, the release image does not pay for it. KSA_RELEASE_ASSERT is always checked, for
// invariants whose breach could leak memory between requests or hand bytes to the wrong peer.
#pragma once

namespace core {

// Prints "<file>:<line>: invariant broken: <condition>" to stderr and aborts.
[[noreturn]] void assertionFailed(const char* file, int line, const char* condition);

}  // namespace core

#define KSA_RELEASE_ASSERT(condition)                                          \
  do {                                                                         \
    if (!(condition)) ::core::assertionFailed(__FILE__, __LINE__, #condition); \
  } while (false)

#ifdef NDEBUG
#define KSA_ASSERT(condition) \
  do {                        \
  } while (false && (condition))
#else
#define KSA_ASSERT(condition) KSA_RELEASE_ASSERT(condition)
#endif
