// A model server with a fixed cost per call, for the batching benchmark: every POST waits
// -delay (one call at a time with -serial, as on a single accelerator), then answers
// {"predictions": <instances>} for a body {"instances": [...]}. GET /stats reports the calls and
// instances served so far, so the harness can tell the batch size, and the calls in progress or
// waiting for the device, so it can wait for the calls a previous case left behind; other GETs get
// a small JSON.
// Usage: modelserver -listen 127.0.0.1:PORT [-delay 20ms] [-serial]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	delay := flag.Duration("delay", 20*time.Millisecond, "fixed cost of one call")
	serial := flag.Bool("serial", true, "serve one call at a time")
	flag.Parse()

	var device sync.Mutex
	var calls, instances, pending atomic.Int64
	http.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"calls":%d,"instances":%d,"pending":%d}`, calls.Load(), instances.Load(),
			pending.Load())
	})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost {
			io.WriteString(w, `{"status":"ok"}`)
			return
		}
		var request struct {
			Instances []json.RawMessage `json:"instances"`
		}
		if err := json.NewDecoder(r.Body).Decode(&request); err != nil || request.Instances == nil {
			http.Error(w, `{"error":"expected {\"instances\": [...]}"}`, http.StatusBadRequest)
			return
		}
		pending.Add(1)
		defer pending.Add(-1)
		if *serial {
			device.Lock()
		}
		time.Sleep(*delay)
		if *serial {
			device.Unlock()
		}
		calls.Add(1)
		instances.Add(int64(len(request.Instances)))
		predictions, _ := json.Marshal(request.Instances)
		w.Write(append(append([]byte(`{"predictions":`), predictions...), '}'))
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}
