#include "core/util/capture.h"

#include <catch2/catch.hpp>
#include <string>

using core::CaptureBuffer;
using core::SharedBytes;

TEST_CASE("A capture buffer grows in place up to its capacity and refuses more", "[core]") {
  auto buffer = CaptureBuffer::make(3 * 1024 * 1024 + 5);
  REQUIRE(buffer != nullptr);
  std::string expected;
  const char* start = buffer->view().data();
  // Pieces of odd sizes, across the steps in which the range is made usable.
  for (size_t i = 0; expected.size() + 70001 <= 3 * 1024 * 1024; ++i) {
    std::string piece(70001, static_cast<char>('a' + i % 26));
    REQUIRE(buffer->append(piece));
    expected += piece;
    // The bytes never move: nothing is copied as the body grows.
    CHECK(buffer->view().data() == start);
  }
  size_t room = 3 * 1024 * 1024 + 5 - expected.size();
  REQUIRE(buffer->append(std::string(room, 'z')));
  expected += std::string(room, 'z');
  CHECK(buffer->size() == expected.size());
  CHECK(buffer->view() == expected);
  CHECK_FALSE(buffer->append("x"));
  CHECK(buffer->append(""));
  CHECK(buffer->view() == expected);
}

TEST_CASE("A capture buffer of one byte, and none of no bytes", "[core]") {
  auto one = CaptureBuffer::make(1);
  REQUIRE(one != nullptr);
  CHECK(one->append("q"));
  CHECK_FALSE(one->append("r"));
  CHECK(one->view() == "q");
  CHECK(CaptureBuffer::make(0) == nullptr);
}

TEST_CASE("Shared bytes keep their owner alive and view its bytes", "[core]") {
  SharedBytes none;
  CHECK_FALSE(none);
  CHECK(none.size() == 0);

  SharedBytes text = std::make_shared<const std::string>("hello");
  CHECK(text);
  CHECK(text.view() == "hello");

  auto buffer = CaptureBuffer::make(16);
  REQUIRE(buffer->append("captured"));
  std::string_view bytes = buffer->view();
  SharedBytes captured(std::shared_ptr<const void>(std::move(buffer)), bytes);
  SharedBytes copy = captured;
  captured = SharedBytes();
  CHECK(copy.view() == "captured");
  CHECK(copy.data() == bytes.data());
}
