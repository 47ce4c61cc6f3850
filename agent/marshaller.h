// The embedded marshaller's HTTP server on --log-marshaller-port (blob sinks only), as upstream
// serves it on all interfaces: any path; POST a JSON array of records and get the object in
// --log-store-format back (logger/blob/marshaller.h has the answers). The agent's own batches
// do not go through it (they are marshalled in place); it is there for what calls upstream's.
#pragma once

#include "core/chain/filter.h"
#include "core/chain/terminal.h"
#include "logger/blob/format.h"

namespace agent {

// Answers every request once its body has arrived; nothing goes on down the chain.
class MarshallerFilter final : public core::Filter {
 public:
  explicit MarshallerFilter(logger::blob::Format format) : format_(format) {}
  core::Action onRequestHeaders(const core::ExchangePtr& exchange) override;
  core::Action onRequestBody(const core::ExchangePtr& exchange, std::string& body) override;

 private:
  logger::blob::Format format_;
};

// The chain's end, which MarshallerFilter never lets a request reach; a server needs one.
class NoTerminal final : public core::Terminal {
 public:
  core::TerminalStreamPtr start(core::Downstream& exchange) override;
};

}  // namespace agent
