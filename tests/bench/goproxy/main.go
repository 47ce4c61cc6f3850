// A Go reverse proxy peer for the benchmark: net/http/httputil's single-host reverse proxy
// with the transport settings of the upstream Go agent (1000 idle connections per host).
// Usage: goproxy LISTEN_ADDR TARGET_URL
package main

import (
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
)

func main() {
	target, err := url.Parse(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = 1000
	transport.MaxIdleConnsPerHost = 1000
	proxy.Transport = transport
	log.Fatal(http.ListenAndServe(os.Args[1], proxy))
}
