#include "core/util/recycle.h"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

namespace core {

namespace {

// Bounds on what a thread keeps: at most 256 KiB of strings, 512 KiB of header vectors, and
// 256 KiB of blocks of each of 8 sizes: under 3 MiB at worst.
constexpr size_t kMaxStrings = 1024;
// How many of the latest kept strings reuseString looks through for one that fits.
constexpr size_t kFitSearch = 8;
constexpr size_t kMaxVectors = 256;
constexpr size_t kMaxVectorCapacity = 32;
constexpr size_t kMaxBlockBytes = 256 * 1024;
constexpr size_t kBlockSizes = 8;

struct BlockList {
  size_t size = 0;
  std::vector<void*> blocks;
};

struct Spares {
  std::vector<std::string> strings;
  std::vector<Headers> vectors;
  std::array<BlockList, kBlockSizes> blockLists;

  ~Spares();

  BlockList* listFor(size_t size) {
    for (BlockList& list : blockLists) {
      if (list.size == size) return &list;
      if (list.size == 0) {
        list.size = size;
        return &list;
      }
    }
    return nullptr;
  }
};

// This thread's spares, made on first use. A trivial thread_local, so the hot path costs one
// TLS access, which matters where this code is in a library loaded with dlopen (every access is
// a call to __tls_get_addr there). Null before first use and once the spares are destroyed;
// `sparesGone` tells the two apart.
thread_local Spares* current = nullptr;
// Set once this thread's spares are destroyed: what is freed later (by other thread-local
// destructors) goes straight back to the heap.
thread_local bool sparesGone = false;

struct SparesOwner {
  Spares spares;
  SparesOwner() { current = &spares; }
  ~SparesOwner() {
    current = nullptr;
    sparesGone = true;
  }
  SparesOwner(const SparesOwner&) = delete;
  SparesOwner& operator=(const SparesOwner&) = delete;
};

Spares::~Spares() {
  for (BlockList& list : blockLists) {
    for (void* block : list.blocks)
      ::operator delete(block);
  }
}

[[gnu::noinline]] Spares* makeSpares() {
  if (sparesGone) return nullptr;
  thread_local SparesOwner owner;
  return &owner.spares;
}

// This thread's spares; null once they are destroyed.
Spares* spares() {
  Spares* instance = current;
  return instance != nullptr ? instance : makeSpares();
}

void recycleString(Spares& spares, std::string& s) {
  if (keepable(s) && spares.strings.size() < kMaxStrings) spares.strings.push_back(std::move(s));
}

void recycleHeaders(Spares& spares, Headers& headers) {
  for (Header& header : headers) {
    recycleString(spares, header.name);
    recycleString(spares, header.value);
  }
  headers.clear();
  if (headers.capacity() == 0 || headers.capacity() > kMaxVectorCapacity) return;
  if (spares.vectors.size() < kMaxVectors) spares.vectors.push_back(std::move(headers));
}

}  // namespace

void recycleHeapString(std::string& s) {
  Spares* instance = spares();
  if (instance != nullptr) recycleString(*instance, s);
}

void reuseHeapString(std::string& s, size_t needed) {
  Spares* instance = spares();
  if (instance == nullptr || instance->strings.empty()) return;
  std::vector<std::string>& strings = instance->strings;
  // Strings of many sizes are kept: taking one too small would only trade it for a new one.
  size_t searched = std::min(strings.size(), kFitSearch);
  for (size_t i = 1; i <= searched; ++i) {
    std::string& candidate = strings[strings.size() - i];
    if (candidate.capacity() >= needed) {
      std::swap(candidate, strings.back());
      break;
    }
  }
  s = std::move(strings.back());
  strings.pop_back();
  s.clear();
}

Headers reuseHeaders() {
  Spares* instance = spares();
  if (instance == nullptr || instance->vectors.empty()) return {};
  Headers headers = std::move(instance->vectors.back());
  instance->vectors.pop_back();
  return headers;
}

void recycleHead(RequestHead& head) {
  Spares* instance = spares();
  if (instance != nullptr) {
    recycleString(*instance, head.method);
    recycleString(*instance, head.target);
    recycleHeaders(*instance, head.headers);
  }
  head = RequestHead{};
}

void recycleHead(ResponseHead& head) {
  Spares* instance = spares();
  if (instance != nullptr) {
    recycleString(*instance, head.reason);
    recycleHeaders(*instance, head.headers);
  }
  head = ResponseHead{};
}

void* recycledBlock(size_t size) {
  Spares* instance = size <= kMaxRecycledBlock ? spares() : nullptr;
  BlockList* list = instance != nullptr ? instance->listFor(size) : nullptr;
  if (list != nullptr && !list->blocks.empty()) {
    void* block = list->blocks.back();
    list->blocks.pop_back();
    return block;
  }
  return ::operator new(size);
}

void recycleBlock(void* block, size_t size) {
  Spares* instance = size <= kMaxRecycledBlock ? spares() : nullptr;
  BlockList* list = instance != nullptr ? instance->listFor(size) : nullptr;
  if (list != nullptr && list->blocks.size() < kMaxBlockBytes / size) {
    list->blocks.push_back(block);
    return;
  }
  ::operator delete(block);
}

}  // namespace core
