// Names to addresses for the client: IP literals at once, names through getaddrinfo on libuv's
// thread pool, so the loop never waits for DNS. Answers are kept for a short while so that a
// burst of new connections to one service costs one lookup.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace core {

using Addresses = std::vector<sockaddr_storage>;

// The address of an IPv4 or IPv6 literal (without brackets), or nullopt for a name.
std::optional<sockaddr_storage> literalAddress(const std::string& host, uint16_t port);

// "host:port" of an address, as Go writes it in dial errors ("[::1]:80" for IPv6).
std::string addressText(const sockaddr_storage& address);

class Resolver {
 public:
  // Found addresses in the order getaddrinfo gives them (the system's preference), or a libuv
  // error (status < 0) with the addresses empty.
  using Done = std::function<void(int status, const Addresses& addresses)>;

  Resolver(uv_loop_t* loop, std::chrono::milliseconds keepAnswers = std::chrono::seconds(5));
  // Lookups still running end without their callbacks.
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Resolves `host` for TCP on `port`. A literal or a kept answer calls `done` before resolve
  // returns (and resolve returns 0); a lookup calls it later on the loop, and resolve returns an
  // id for cancel(). Concurrent lookups of one name share one query. `done` must not destroy the
  // resolver.
  uint64_t resolve(const std::string& host, uint16_t port, Done done);
  // Withdraws a waiting resolve: its `done` will not run.
  void cancel(uint64_t id);
  // Forgets the kept answer for `host` (after every address of it failed).
  void forget(const std::string& host) { answers_.erase(host); }
  // Keeps `addresses` (their ports ignored) as the answer for `host` for the usual while, as if
  // a lookup had found them: tests use it to give a name several addresses.
  void rememberForTest(const std::string& host, Addresses addresses);

 private:
  struct Lookup;
  struct Answer {
    Addresses addresses;   // with port 0; the caller's port is set on the way out
    uint64_t expires = 0;  // uv_now milliseconds
  };
  static void onResolved(uv_getaddrinfo_t* request, int status, addrinfo* result);

  uv_loop_t* loop_;
  std::chrono::milliseconds keepAnswers_;
  std::unordered_map<std::string, Answer> answers_;
  std::unordered_map<std::string, Lookup*> lookups_;
  uint64_t nextId_ = 1;
};

}  // namespace core
