// Exposes Go's gjson to the differential fuzz target (gjson_diff_fuzz.cc) as a C archive. It is
// built offline against Debian's golang-github-tidwall-gjson-dev (1.14.4) in GOPATH mode; see
// tests/fuzz/CMakeLists.txt.
package main

// #include <stdlib.h>
import "C"

import (
	"unsafe"

	"github.com/tidwall/gjson"
)

// GjsonValid answers gjson.ValidBytes: 1 for valid, 0 otherwise.
//
//export GjsonValid
func GjsonValid(json *C.char, n C.int) C.int {
	if gjson.ValidBytes(C.GoBytes(unsafe.Pointer(json), n)) {
		return 1
	}
	return 0
}

// GjsonGet answers gjson.GetBytes: the result's type and raw text (malloc'd; the caller frees
// it). It returns 1 when gjson panicked, and then sets nothing.
//
//export GjsonGet
func GjsonGet(json *C.char, jn C.int, path *C.char, pn C.int, typ *C.int, raw **C.char, rawLen *C.int) (panicked C.int) {
	defer func() {
		if recover() != nil {
			panicked = 1
		}
	}()
	r := gjson.GetBytes(C.GoBytes(unsafe.Pointer(json), jn), C.GoStringN(path, pn))
	*typ = C.int(r.Type)
	*rawLen = C.int(len(r.Raw))
	*raw = (*C.char)(C.CBytes([]byte(r.Raw)))
	return 0
}

func main() {}
