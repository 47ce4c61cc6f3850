// AWS credentials in the order the AWS SDKs look for them, as a pod on EKS or EC2 gets them:
// keys in the environment, web identity (IRSA; the variables, or the shared profile's
// role_arn and web_identity_token_file), the shared profile (aws_profile.h: a role assumed
// through STS AssumeRole with a source_profile's or credential_source's credentials, keys in the
// credentials or config file, or credential_process), container credentials (EKS Pod Identity,
// ECS), then the EC2 instance profile through IMDSv2. What the sources other than the environment
// return is cached per process, shared by every thread, and fetched again before it expires.
#pragma once

#include <atomic>
#include <string>

#include "puller/storage/sigv4.h"

namespace storage::aws {

struct CredentialResult {
  bool ok = false;
  sigv4::Credentials credentials;
  // "environment", "web identity", "shared profile", "container credentials", "instance
  // metadata".
  std::string source;
  // When !ok: either what was tried (no source configured or answering), or why the configured
  // source refused. Never contains a key, token or signature.
  std::string error;
};

// The first source that is configured answers; a configured source that fails is an error (as
// the SDKs do), it does not fall through to the next. Thread-safe; blocks while a refresh runs.
CredentialResult resolveCredentials(const std::atomic<bool>* cancel = nullptr);

// Where web identity is exchanged: AWS_ENDPOINT_URL_STS, else the regional STS endpoint of
// AWS_REGION / AWS_DEFAULT_REGION, else (no region, or AWS_STS_REGIONAL_ENDPOINTS=legacy) the
// global https://sts.amazonaws.com.
std::string stsEndpointFromEnv();

// Forgets the cached credentials (tests; a refused request may call it to force a new fetch).
void clearCredentialCache();

}  // namespace storage::aws
