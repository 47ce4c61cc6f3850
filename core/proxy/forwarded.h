// Forwarding headers the proxy adds or derives on the way to the model server.
#pragma once

#include "core/http/head.h"

namespace core {

// Knative's forwarded shim: when no Forwarded header is present but X-Forwarded-For/-Host/
// -Proto are, synthesise Forwarded from them (for=<node>;host=<h>;proto=<p>, further nodes as
// ", for=<node>", IPv6 nodes quoted in brackets).
void applyForwardedShim(Headers& headers);

}  // namespace core
