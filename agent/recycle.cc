#include "agent/recycle.h"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

namespace agent {

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

// Set once this thread's spares are destroyed: what is freed later (by other thread-local
// destructors) goes straight back to the heap.
thread_local bool sparesGone = false;

Spares::~Spares() {
  sparesGone = true;
  for (BlockList& list : blockLists) {
    for (void* block : list.blocks)
      ::operator delete(block);
  }
}

Spares& spares() {
  thread_local Spares instance;
  return instance;
}

void recycleHeaders(Headers& headers) {
  for (Header& header : headers) {
    recycleString(header.name);
    recycleString(header.value);
  }
  headers.clear();
  if (headers.capacity() == 0 || headers.capacity() > kMaxVectorCapacity) return;
  std::vector<Headers>& vectors = spares().vectors;
  if (vectors.size() < kMaxVectors) vectors.push_back(std::move(headers));
}

}  // namespace

void recycleString(std::string& s) {
  if (sparesGone || s.capacity() <= std::string().capacity() || s.capacity() > kMaxRecycledString) {
    return;
  }
  std::vector<std::string>& strings = spares().strings;
  if (strings.size() < kMaxStrings) strings.push_back(std::move(s));
}

void reuseString(std::string& s, size_t needed) {
  if (sparesGone || s.capacity() > std::string().capacity()) return;
  std::vector<std::string>& strings = spares().strings;
  if (strings.empty()) return;
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
  if (sparesGone) return {};
  std::vector<Headers>& vectors = spares().vectors;
  if (vectors.empty()) return {};
  Headers headers = std::move(vectors.back());
  vectors.pop_back();
  return headers;
}

void recycleHead(RequestHead& head) {
  if (!sparesGone) {
    recycleString(head.method);
    recycleString(head.target);
    recycleHeaders(head.headers);
  }
  head = RequestHead{};
}

void recycleHead(ResponseHead& head) {
  if (!sparesGone) {
    recycleString(head.reason);
    recycleHeaders(head.headers);
  }
  head = ResponseHead{};
}

void* recycledBlock(size_t size) {
  if (!sparesGone && size <= kMaxRecycledBlock) {
    BlockList* list = spares().listFor(size);
    if (list != nullptr && !list->blocks.empty()) {
      void* block = list->blocks.back();
      list->blocks.pop_back();
      return block;
    }
  }
  return ::operator new(size);
}

void recycleBlock(void* block, size_t size) {
  if (!sparesGone && size <= kMaxRecycledBlock) {
    BlockList* list = spares().listFor(size);
    if (list != nullptr && list->blocks.size() < kMaxBlockBytes / size) {
      list->blocks.push_back(block);
      return;
    }
  }
  ::operator delete(block);
}

}  // namespace agent
