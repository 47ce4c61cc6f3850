#include <cstdio>

#include "agent/app.h"

int main(int argc, char** argv) {
  agent::ParseResult parsed = agent::parseConfig(argc, argv);
  if (!parsed.config) {
    std::fprintf(parsed.exitCode == 0 ? stdout : stderr, "%s\n", parsed.message.c_str());
    return parsed.exitCode;
  }
  return agent::runAgent(*parsed.config);
}
