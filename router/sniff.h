// The Content-Type Go's net/http gives a body written without one (http.DetectContentType):
// what upstream's router answers when the graph's result is not JSON.
#pragma once

#include <string_view>

namespace router {

// The first 512 bytes decide: HTML, XML, PDF, PostScript, byte-order marks, common image, font,
// archive and media signatures, then text/plain; charset=utf-8 when no byte is binary, else
// application/octet-stream.
std::string_view detectContentType(std::string_view body);

}  // namespace router
