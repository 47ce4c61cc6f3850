// Process-wide cache of bearer tokens (Google and Azure), shared by every download and upload
// of the process and safe to use from their threads. A token is fetched once, reused while it is
// fresh and fetched again shortly before it expires, so a long download never sends an expired
// token and parallel transfers do not each ask the token endpoint.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "puller/storage/storage.h"

namespace storage::tokens {

// What a fetch returns: the token and how long the issuer says it stays valid.
struct Fetched {
  std::string token;
  std::chrono::seconds lifetime{3600};
};

using Fetch = std::function<Status(Fetched& out)>;

// The token cached under `key`, or a fresh one from `fetch` when there is none or it is within
// its refresh margin (a quarter of its lifetime, at most 5 minutes) of expiring. One fetch runs
// at a time per key; concurrent callers wait for it and share its result. A failed fetch caches
// nothing. `key` must name everything the token depends on (credential, endpoint, scope).
Status get(const std::string& key, const Fetch& fetch, std::string& token);

// Forgets the token under `key` (the server refused it: revoked, or the clock is off).
void invalidate(const std::string& key);
// Forgets every token whose key starts with `prefix`.
void invalidatePrefix(const std::string& prefix);

// Seconds from now until an RFC 3339 UTC time ("2026-01-01T00:00:00Z", fractions allowed);
// nullopt when the text is not such a time.
std::optional<std::chrono::seconds> secondsUntil(const std::string& rfc3339);

}  // namespace storage::tokens
