#include "core/util/capture.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace core {

namespace {

// The range is made usable this much at a time: a few system calls for a large body, and
// what is usable but untouched costs no memory (only commit charge, under strict overcommit).
constexpr size_t kUsableStep = size_t{1} << 20;

size_t pageSize() {
  static const auto size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

size_t roundUpToPage(size_t bytes) {
  size_t page = pageSize();
  return (bytes + page - 1) / page * page;
}

}  // namespace

std::shared_ptr<CaptureBuffer> CaptureBuffer::make(size_t capacity) {
  if (capacity == 0 || capacity > SIZE_MAX - pageSize()) return nullptr;
  size_t reserved = roundUpToPage(capacity);
  // PROT_NONE: address space only, neither memory nor commit charge until made usable.
  void* base =
      mmap(nullptr, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return nullptr;
  return std::shared_ptr<CaptureBuffer>(
      new CaptureBuffer(static_cast<char*>(base), reserved, capacity));
}

CaptureBuffer::~CaptureBuffer() {
  munmap(base_, reserved_);
}

bool CaptureBuffer::append(std::string_view bytes) {
  if (bytes.size() > capacity_ - size_) return false;
  size_t needed = size_ + bytes.size();
  if (needed > usable_) {
    size_t usable = std::min(reserved_, roundUpToPage(std::max(needed, usable_ + kUsableStep)));
    if (mprotect(base_ + usable_, usable - usable_, PROT_READ | PROT_WRITE) != 0) return false;
    usable_ = usable;
  }
  std::memcpy(base_ + size_, bytes.data(), bytes.size());
  size_ = needed;
  return true;
}

}  // namespace core
