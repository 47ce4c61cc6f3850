#include "core/util/recycle.h"

#include <catch2/catch.hpp>
#include <memory>
#include <thread>

#include "core/http/parser.h"

using namespace core;

namespace {

// What is kept is per thread: each case runs on a thread of its own, so it starts with nothing
// kept and sees only what it recycles itself.
template <typename Body>
void onFreshThread(Body body) {
  std::thread(body).join();
}

struct Holder {
  char bytes[200];
};

// Moves each head out of the parser, as the server hands it to its exchange.
struct Mover : HttpParser::Delegate {
  HttpParser* parser = nullptr;
  RequestHead last;
  bool onParsedHead() override {
    recycleHead(last);
    last = std::move(parser->request());
    return false;
  }
  void onParsedBody(const char*, size_t) override {}
  bool onParsedMessageComplete() override { return false; }
};

}  // namespace

TEST_CASE("a recycled head's vector and long strings are reused", "[agent][recycle]") {
  onFreshThread([] {
    CHECK(reuseHeaders().capacity() == 0);
    RequestHead head;
    head.method = "GET";
    head.target = "/v1/models/some-model-name:predict";
    head.headers.reserve(8);
    head.headers.push_back({"Host", std::string(100, 'v')});
    const Header* storage = head.headers.data();
    const char* longValue = head.headers[0].value.data();
    const char* longTarget = head.target.data();
    recycleHead(head);
    CHECK(head.target.empty());
    CHECK(head.headers.empty());

    Headers headers = reuseHeaders();
    CHECK(headers.empty());
    CHECK(headers.capacity() == 8);
    CHECK(headers.data() == storage);
    CHECK(reuseHeaders().capacity() == 0);

    std::string value;
    reuseString(value);
    CHECK(value.empty());
    CHECK(value.data() == longValue);
    std::string target;
    reuseString(target);
    CHECK(target.data() == longTarget);
    std::string none;
    reuseString(none);
    CHECK(none.capacity() == std::string().capacity());
  });
}

TEST_CASE("short and very long strings are not kept", "[agent][recycle]") {
  onFreshThread([] {
    ResponseHead head;
    head.reason = "OK";
    head.headers.push_back({"Server", "x"});
    head.headers.push_back({"X-Huge", std::string(100000, 'h')});
    recycleHead(head);
    std::string s;
    reuseString(s);
    CHECK(s.capacity() == std::string().capacity());
  });
}

TEST_CASE("reuseString takes the latest kept string that fits", "[agent][recycle]") {
  onFreshThread([] {
    RequestHead head;
    head.target = std::string(100, 't');
    head.headers.push_back({"Date", std::string(29, 'd')});
    const char* large = head.target.data();
    const char* small = head.headers[0].value.data();
    recycleHead(head);
    std::string body;
    reuseString(body, 80);
    CHECK(body.data() == large);
    std::string id;
    reuseString(id, 36);
    CHECK(id.data() == small);  // none fits any more: the latest is taken, to be grown
  });
}

TEST_CASE("appendReusing takes a kept string only when it needs one", "[agent][recycle]") {
  onFreshThread([] {
    RequestHead head;
    head.target = std::string(64, 't');
    const char* kept = head.target.data();
    recycleHead(head);
    std::string small;
    appendReusing(small, "abc", 3);
    CHECK(small == "abc");
    std::string large;
    std::string text(40, 'x');
    appendReusing(large, text.data(), text.size());
    CHECK(large == text);
    CHECK(large.data() == kept);
  });
}

TEST_CASE("the recycling allocator hands a freed block to the next allocation",
          "[agent][recycle]") {
  onFreshThread([] {
    auto first = std::allocate_shared<Holder>(RecyclingAllocator<Holder>());
    const void* address = first.get();
    first.reset();
    auto second = std::allocate_shared<Holder>(RecyclingAllocator<Holder>());
    CHECK(static_cast<const void*>(second.get()) == address);
    auto third = std::allocate_shared<Holder>(RecyclingAllocator<Holder>());
    CHECK(static_cast<const void*>(third.get()) != address);
  });
}

TEST_CASE("the recycling allocator reuses arrays up to the block limit", "[agent][recycle]") {
  onFreshThread([] {
    // A std::deque used as a queue allocates and frees blocks of a few elements like these.
    RecyclingAllocator<Holder> allocator;
    static_assert(3 * sizeof(Holder) <= kMaxRecycledBlock);
    Holder* three = allocator.allocate(3);
    allocator.deallocate(three, 3);
    Holder* again = allocator.allocate(3);
    CHECK(again == three);
    Holder* two = allocator.allocate(2);
    CHECK(two != three);
    allocator.deallocate(two, 2);
    allocator.deallocate(again, 3);
    Holder* twoAgain = allocator.allocate(2);
    CHECK(twoAgain == two);
    allocator.deallocate(twoAgain, 2);
  });
}

TEST_CASE("heads parsed into recycled storage hold only their own bytes", "[agent][recycle]") {
  onFreshThread([] {
    Mover mover;
    HttpParser parser(HTTP_REQUEST, mover);
    mover.parser = &parser;
    std::string first =
        "GET /a-rather-long-target-for-the-first-request HTTP/1.1\r\nHost: h\r\n"
        "X-Long: " +
        std::string(80, 'a') + "\r\nX-Other-Long-Header-Name: 1\r\n\r\n";
    REQUIRE(parser.execute(first.data(), first.size()).status == HttpParser::Status::Ok);
    REQUIRE(mover.last.headers.size() == 3);
    const Header* firstStorage = mover.last.headers.data();

    std::string second =
        "GET /b HTTP/1.1\r\nX-Long: b\r\nX-Next: " + std::string(30, 'c') + "\r\nHost: g\r\n\r\n";
    REQUIRE(parser.execute(second.data(), second.size()).status == HttpParser::Status::Ok);
    CHECK(mover.last.target == "/b");
    REQUIRE(mover.last.headers.size() == 3);
    CHECK(mover.last.headers[0].name == "X-Long");
    CHECK(mover.last.headers[0].value == "b");
    CHECK(mover.last.headers[1].name == "X-Next");
    CHECK(mover.last.headers[1].value == std::string(30, 'c'));
    CHECK(mover.last.headers[2].value == "g");

    // The third head is built in the first one's vector, recycled when the second arrived.
    std::string third = "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
    REQUIRE(parser.execute(third.data(), third.size()).status == HttpParser::Status::Ok);
    CHECK(mover.last.headers.data() == firstStorage);
    CHECK(mover.last.headers.size() == 1);
    CHECK(mover.last.headers[0].value == "h");
  });
}
