// The AWS shared files, as the SDKs read them: the credentials file (AWS_SHARED_CREDENTIALS_FILE,
// default ~/.aws/credentials; sections named by profile) and the config file (AWS_CONFIG_FILE,
// default ~/.aws/config; [default] and [profile <name>]), for the profile AWS_PROFILE (or
// AWS_DEFAULT_PROFILE) names, "default" otherwise.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace storage::aws {

struct Profile {
  std::string name;
  bool named = false;  // chosen by AWS_PROFILE or AWS_DEFAULT_PROFILE, not by default
  bool found = false;  // a section of that name exists in either file
  std::string credentialsFile;
  std::string configFile;
  // Keys in lower case; the credentials file's values win over the config file's.
  std::map<std::string, std::string> values;
  std::string value(const std::string& key) const {
    auto it = values.find(key);
    return it == values.end() ? "" : it->second;
  }
};

// The keys of one section of an INI text as botocore reads it: `key = value` lines (`:` also
// separates), `#` and `;` comment lines, indented lines (nested settings such as `s3 =`)
// skipped; nullopt when there is no such section.
std::optional<std::map<std::string, std::string>> iniSection(std::string_view text,
                                                             std::string_view section);

// The chosen profile, read from both files now (missing files hold nothing).
Profile loadProfile();
// The profile of that name (a role's source_profile), read the same way.
Profile loadProfile(const std::string& name);

// The region: AWS_REGION, AWS_DEFAULT_REGION, then the profile's `region`; "" when none.
std::string configuredRegion();

}  // namespace storage::aws
