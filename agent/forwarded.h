// Knative's Forwarded shim, applied to every request before the agent's filters see it.
#pragma once

#include "core/http/head.h"

namespace agent {

// Knative's forwarded shim: when no Forwarded header is present but X-Forwarded-For/-Host/
// -Proto are, synthesise Forwarded from them (for=<node>;host=<h>;proto=<p>, further nodes as
// ", for=<node>", IPv6 nodes quoted in brackets).
void applyForwardedShim(core::Headers& headers);

}  // namespace agent
