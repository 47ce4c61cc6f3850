// A CloudEvents sink that costs the machine as little as it can, for the logger benchmark: on a
// 2-core machine every cycle the sink spends is taken from the agent being measured, and a real
// sink runs elsewhere. It reads pipelined HTTP/1.1 requests framed by Content-Length, answers
// 202 to each, and writes the answers to requests that arrived together with one system call.
// GET /status answers {"events":N}, the POSTs accepted so far. It is not a general HTTP server:
// a request without Content-Length (chunked, say) gets 411 and the connection is closed.
// Usage: leansink LISTEN_ADDR
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"sync/atomic"
)

var events atomic.Int64

var contentLength = []byte("content-length:")

// readHead reads one request head; it returns whether the method is GET and the body length
// (-1: none given). It allocates nothing, so the sink's garbage collector has no work.
func readHead(r *bufio.Reader) (get bool, length int64, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return false, 0, err
	}
	get = bytes.HasPrefix(line, []byte("GET "))
	length = -1
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return false, 0, err
		}
		if len(line) <= 2 {
			return get, length, nil
		}
		if len(line) > len(contentLength) && bytes.EqualFold(line[:len(contentLength)], contentLength) {
			if length, err = parseLength(bytes.TrimSpace(line[len(contentLength):])); err != nil {
				return false, 0, err
			}
		}
	}
}

func parseLength(digits []byte) (int64, error) {
	if len(digits) == 0 || len(digits) > 15 {
		return 0, errors.New("bad Content-Length")
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, errors.New("bad Content-Length")
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

func serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 64<<10)
	for {
		get, length, err := readHead(r)
		if err != nil {
			return
		}
		switch {
		case get:
			body := fmt.Sprintf(`{"events":%d}`, events.Load())
			fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				len(body), body)
		case length < 0:
			w.WriteString("HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			w.Flush()
			return
		default:
			if _, err := r.Discard(int(length)); err != nil {
				return
			}
			events.Add(1)
			w.WriteString("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
		}
		if r.Buffered() == 0 && w.Flush() != nil {
			return
		}
	}
}

func main() {
	listener, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := listener.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(c)
	}
}
