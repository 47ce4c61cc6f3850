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
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"sync/atomic"
)

var events atomic.Int64

var contentLength = []byte("content-length:")

// readHead reads one request head; it returns the method and the body length (-1: none given).
func readHead(r *bufio.Reader) (method string, length int64, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return "", 0, err
	}
	space := bytes.IndexByte(line, ' ')
	if space <= 0 {
		return "", 0, fmt.Errorf("bad request line %q", line)
	}
	method = string(line[:space])
	length = -1
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return "", 0, err
		}
		if len(line) <= 2 {
			return method, length, nil
		}
		if len(line) > len(contentLength) && bytes.EqualFold(line[:len(contentLength)], contentLength) {
			value := bytes.TrimSpace(line[len(contentLength):])
			length, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || length < 0 {
				return "", 0, fmt.Errorf("bad Content-Length %q", value)
			}
		}
	}
}

func serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 64<<10)
	for {
		method, length, err := readHead(r)
		if err != nil {
			return
		}
		switch {
		case method == "GET":
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
