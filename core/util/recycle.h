// Per-thread reuse of what every request would otherwise allocate and free: the header vectors
// and longer strings of message heads, and the exchange's block. Once a loop thread has served a
// few requests, proxying one calls malloc no more (bursts of answers that end many exchanges at
// once would otherwise overflow glibc's small per-thread cache and go to its slower bins).
// Everything kept is bounded in count and size, and freed when the thread ends.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "core/http/head.h"

namespace core {

// The capacity of a string that holds its characters inline (no heap block). Not constexpr:
// clang does not evaluate libstdc++'s string constructor at compile time.
inline const size_t kInlineStringCapacity = std::string().capacity();

// The out-of-line parts of reuseString and recycleString.
void reuseHeapString(std::string& s, size_t needed);
void recycleHeapString(std::string& s);

// Gives the empty string `s` the capacity of a recycled one, when `s` has only its inline
// capacity and this thread has one to give. The latest kept string that holds `needed` bytes is
// taken when one of the last few does, else the latest (which the caller then grows).
inline void reuseString(std::string& s, size_t needed = 0) {
  if (s.capacity() == kInlineStringCapacity) reuseHeapString(s, needed);
}
// Appends, first taking a recycled string's capacity when `s` is empty and too small.
inline void appendReusing(std::string& s, const char* data, size_t length) {
  if (s.empty() && length > s.capacity()) reuseString(s, length);
  s.append(data, length);
}
// Replaces the content of `s` with `text` (which must not point into `s`), as appendReusing.
inline void assignReusing(std::string& s, std::string_view text) {
  s.clear();
  appendReusing(s, text.data(), text.size());
}
// Strings with more capacity than this are never kept.
inline constexpr size_t kMaxRecycledString = 256;
// Whether the capacity of `s` is worth keeping: not inline, at most kMaxRecycledString.
inline bool keepable(const std::string& s) {
  return s.capacity() > kInlineStringCapacity && s.capacity() <= kMaxRecycledString;
}
// Keeps the capacity of `s` for this thread's next reuseString, when it is keepable and the
// thread has room for it; `s` is left valid and unspecified. Inline, since most strings it sees
// (moved-from ones) have nothing to keep.
inline void recycleString(std::string& s) {
  if (keepable(s)) recycleHeapString(s);
}

// An empty header vector: a recycled one (with its capacity) when this thread has one.
Headers reuseHeaders();

// Keeps the head's header vector and the capacity of its longer strings for reuse, and leaves
// the head empty.
void recycleHead(RequestHead& head);
void recycleHead(ResponseHead& head);

// Blocks larger than this are never kept.
inline constexpr size_t kMaxRecycledBlock = 1024;

// A block of `size` bytes: one this thread freed with recycleBlock when there is one, otherwise
// from operator new. For objects made and freed with every request (a class's operator new and
// delete can call these).
void* recycledBlock(size_t size);
void recycleBlock(void* block, size_t size);

// For std::allocate_shared, and for containers whose blocks come and go with every request (a
// std::deque used as a queue): blocks of up to kMaxRecycledBlock bytes freed on a thread are
// kept for that thread's next allocation of the same size.
template <typename T>
struct RecyclingAllocator {
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  using value_type = T;

  RecyclingAllocator() = default;
  template <typename U>
  explicit(false) RecyclingAllocator(const RecyclingAllocator<U>&) {}

  T* allocate(size_t n) {
    if (n > kMaxRecycledBlock / sizeof(T)) return std::allocator<T>().allocate(n);
    return static_cast<T*>(recycledBlock(n * sizeof(T)));
  }
  void deallocate(T* p, size_t n) {
    if (n > kMaxRecycledBlock / sizeof(T)) {
      std::allocator<T>().deallocate(p, n);
    } else {
      recycleBlock(p, n * sizeof(T));
    }
  }
  template <typename U>
  bool operator==(const RecyclingAllocator<U>&) const {
    return true;
  }
};

}  // namespace core
