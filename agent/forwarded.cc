#include "agent/forwarded.h"

namespace agent {

using namespace std::string_view_literals;
using core::findHeader;
using core::Headers;
using core::iequals;
using core::splitList;

namespace {

// All values of a header, joined with ", " as one list.
std::string joinedValues(const Headers& headers, std::string_view name) {
  std::string out;
  for (const auto& h : headers) {
    if (!iequals(h.name, name)) continue;
    if (!out.empty()) out += ", "sv;
    out += h.value;
  }
  return out;
}

std::string forwardedNode(std::string_view node) {
  std::string text(node);
  if (text.find(':') != std::string::npos) return "\"[" + text + "]\"";
  return text;
}

}  // namespace

void applyForwardedShim(Headers& headers) {
  if (findHeader(headers, "Forwarded") != nullptr) return;
  std::string xff = joinedValues(headers, "X-Forwarded-For");
  const std::string* host = findHeader(headers, "X-Forwarded-Host");
  const std::string* proto = findHeader(headers, "X-Forwarded-Proto");
  if (xff.empty() && host == nullptr && proto == nullptr) return;

  std::vector<std::string_view> nodes = splitList(xff);
  std::string value;
  auto addPair = [&value](std::string_view key, std::string_view pairValue) {
    if (!value.empty()) value += ';';
    value += key;
    value += '=';
    value += pairValue;
  };
  if (!nodes.empty()) addPair("for", forwardedNode(nodes[0]));
  if (host != nullptr) addPair("host", *host);
  if (proto != nullptr) addPair("proto", *proto);
  for (size_t i = 1; i < nodes.size(); ++i) {
    value += ", for=";
    value += forwardedNode(nodes[i]);
  }
  headers.push_back({"Forwarded", std::move(value)});
}

}  // namespace agent
