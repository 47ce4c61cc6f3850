#include "core/client/resolver.h"

#include <netinet/in.h>

#include <cstring>

namespace core {

namespace {

void setPort(sockaddr_storage& address, uint16_t port) {
  if (address.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in&>(address).sin_port = htons(port);
  } else if (address.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6&>(address).sin6_port = htons(port);
  }
}

}  // namespace

std::optional<sockaddr_storage> literalAddress(const std::string& host, uint16_t port) {
  sockaddr_storage address{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&address)) == 0) {
    return address;
  }
  address = {};
  if (uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&address)) == 0) {
    return address;
  }
  return std::nullopt;
}

std::string addressText(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    uv_ip4_name(&v4, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(v4.sin_port));
  }
  const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
  uv_ip6_name(&v6, text, sizeof text);
  return "[" + std::string(text) + "]:" + std::to_string(ntohs(v6.sin6_port));
}

// One getaddrinfo in flight and everyone waiting for it. Outlives its resolver when the resolver
// goes first (the thread pool still owns the request): `resolver` is then null.
struct Resolver::Lookup {
  uv_getaddrinfo_t request{};
  Resolver* resolver = nullptr;
  std::string host;
  struct Waiter {
    uint64_t id;
    uint16_t port;
    Done done;
  };
  std::vector<Waiter> waiters;
};

Resolver::Resolver(uv_loop_t* loop, std::chrono::milliseconds keepAnswers)
    : loop_(loop), keepAnswers_(keepAnswers) {}

Resolver::~Resolver() {
  for (auto& [host, lookup] : lookups_) {
    lookup->resolver = nullptr;
    lookup->waiters.clear();
    // A lookup not started yet is freed by its callback with UV_ECANCELED.
    uv_cancel(reinterpret_cast<uv_req_t*>(&lookup->request));
  }
}

uint64_t Resolver::resolve(const std::string& host, uint16_t port, Done done) {
  if (auto literal = literalAddress(host, port)) {
    done(0, Addresses{*literal});
    return 0;
  }
  if (auto kept = answers_.find(host); kept != answers_.end()) {
    if (kept->second.expires > uv_now(loop_)) {
      Addresses addresses = kept->second.addresses;
      for (auto& address : addresses)
        setPort(address, port);
      done(0, addresses);
      return 0;
    }
    answers_.erase(kept);
  }
  uint64_t id = nextId_++;
  if (auto running = lookups_.find(host); running != lookups_.end()) {
    running->second->waiters.push_back({id, port, std::move(done)});
    return id;
  }
  auto* lookup = new Lookup;
  lookup->resolver = this;
  lookup->host = host;
  lookup->request.data = lookup;
  lookup->waiters.push_back({id, port, std::move(done)});
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(loop_, &lookup->request, onResolved, host.c_str(), nullptr, &hints);
  if (rc != 0) {
    // The lookup could not start: the caller hears of it before resolve returns.
    Done failed = std::move(lookup->waiters.front().done);
    delete lookup;
    failed(rc, {});
    return 0;
  }
  lookups_[host] = lookup;
  return id;
}

void Resolver::rememberForTest(const std::string& host, Addresses addresses) {
  answers_[host] =
      Answer{std::move(addresses), uv_now(loop_) + static_cast<uint64_t>(keepAnswers_.count())};
}

void Resolver::cancel(uint64_t id) {
  for (auto& [host, lookup] : lookups_) {
    std::erase_if(lookup->waiters, [id](const Lookup::Waiter& w) { return w.id == id; });
  }
}

void Resolver::onResolved(uv_getaddrinfo_t* request, int status, addrinfo* result) {
  std::unique_ptr<Lookup> lookup(static_cast<Lookup*>(request->data));
  Addresses addresses;
  for (addrinfo* info = result; info != nullptr; info = info->ai_next) {
    if (info->ai_family != AF_INET && info->ai_family != AF_INET6) continue;
    sockaddr_storage address{};
    std::memcpy(&address, info->ai_addr, info->ai_addrlen);
    addresses.push_back(address);
  }
  uv_freeaddrinfo(result);
  Resolver* resolver = lookup->resolver;
  if (resolver == nullptr) return;
  resolver->lookups_.erase(lookup->host);
  if (status == 0 && addresses.empty()) status = UV_EAI_NONAME;
  if (status == 0) {
    resolver->answers_[lookup->host] = Answer{
        addresses, uv_now(resolver->loop_) + static_cast<uint64_t>(resolver->keepAnswers_.count())};
  }
  for (auto& waiter : lookup->waiters) {
    Addresses forWaiter = addresses;
    for (auto& address : forWaiter)
      setPort(address, waiter.port);
    waiter.done(status, forWaiter);
  }
}

}  // namespace core
