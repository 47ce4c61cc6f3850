// OCI images as a model source (oci.cc): what a reference names, and which registries are
// reached without TLS verification.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace storage {

struct OciReference {
  std::string registry;    // host[:port]; Docker Hub's API host for docker.io
  std::string repository;  // "team/model" (Docker Hub's single names get "library/")
  std::string reference;   // a tag ("latest" when none), or a digest ("sha256:<64 hex>")
  bool byDigest = false;
};

// oci://<registry>/<repository>[:<tag>|@sha256:<hex>] (or oci+fetch://); nullopt when it is
// not one (no repository, upper case, a malformed digest).
std::optional<OciReference> parseOciReference(std::string_view uri);

// KSERVE_OCI_INSECURE_REGISTRY: true (every registry) or a comma-separated list of registries
// (host[:port], or host for any port) whose certificates are not verified; one that answers
// https with no HTTP at all is then reached over plain http.
bool ociInsecureRegistry(const std::string& registry);

// A registry's WWW-Authenticate challenge: `Bearer realm="...",service="...",scope="..."` (or
// Basic); values quoted or bare, unknown parameters ignored.
struct OciChallenge {
  std::string scheme;  // lower case
  std::string realm;
  std::string service;
  std::string scope;
};
OciChallenge parseOciChallenge(std::string_view header);

}  // namespace storage
