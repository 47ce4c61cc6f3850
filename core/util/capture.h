// Bytes shared by their users without copies (SharedBytes), and a buffer for a large body that
// arrives in pieces (CaptureBuffer): how the logger keeps captured bodies until their events
// are delivered, and what the curl client sends them from.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace core {

// The bytes of an event's body and what keeps them alive (a string, or a CaptureBuffer), shared
// by the event, its retries and the writes that send it.
class SharedBytes {
 public:
  SharedBytes() = default;
  // Implicit, so that a string made elsewhere (small bodies, tests) is a body as it is.
  explicit(false) SharedBytes(std::shared_ptr<const std::string> text)
      : bytes_(text ? std::string_view(*text) : std::string_view()), owner_(std::move(text)) {}
  SharedBytes(std::shared_ptr<const void> owner, std::string_view bytes)
      : bytes_(bytes), owner_(std::move(owner)) {}

  explicit operator bool() const { return owner_ != nullptr; }
  std::string_view view() const { return bytes_; }
  const char* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }

 private:
  std::string_view bytes_;
  std::shared_ptr<const void> owner_;
};

// A body of up to `capacity` bytes in its own range of address space, reserved whole and made
// usable as it fills: it never moves, so a body that arrives chunk by chunk (chunked framing)
// is never copied into a larger buffer. With a growing std::string the old and the new buffer
// coexist at each doubling, and glibc keeps the freed ones resident for reuse (its mmap
// threshold rises with every large block it frees), which made a chunked body cost about twice
// its size. The pages go back to the system as soon as the buffer is destroyed.
class CaptureBuffer {
 public:
  // Reserves the address space; null when the system refuses it.
  static std::shared_ptr<CaptureBuffer> make(size_t capacity);
  ~CaptureBuffer();
  CaptureBuffer(const CaptureBuffer&) = delete;
  CaptureBuffer& operator=(const CaptureBuffer&) = delete;

  // False (nothing appended) beyond the capacity, or when the system refuses more memory.
  bool append(std::string_view bytes);
  std::string_view view() const { return {base_, size_}; }
  size_t size() const { return size_; }

 private:
  CaptureBuffer(char* base, size_t reserved, size_t capacity)
      : base_(base), reserved_(reserved), capacity_(capacity) {}

  char* base_;
  size_t reserved_;    // bytes of address space mapped (whole pages)
  size_t capacity_;    // bytes the buffer may hold
  size_t usable_ = 0;  // bytes from base_ made readable and writable so far
  size_t size_ = 0;
};

}  // namespace core
