// A Go InferenceGraph router for the benchmark, modelled on the request path of upstream
// KServe's router as ../shared/spec/upstream-router.md describes it (facts only, no upstream
// code): a net/http server with upstream's 60/60/180 s server timeouts; the whole request body
// read into memory; every step a POST through Go's default http.Client (its default transport
// keeps 2 idle connections per host) with Content-Type application/json, the whole answer read;
// Sequence (data "$response", conditions on the previous answer, Hard steps), Switch (the first
// step whose GJSON condition exists in the valid JSON input, else 404), Ensemble (one goroutine
// per step, each answer decoded into a map, the result re-encoded with encoding/json) and
// Splitter; the answer's Content-Type is application/json when the body is valid JSON.
// Upstream also logs a few zap lines per step call; this model does not, so its figures are an
// upper bound for upstream's.
//
// Usage: gorouter LISTEN_ADDR GRAPH_JSON. Built in GOPATH mode against Debian's
// golang-github-tidwall-gjson-dev (no download).
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/tidwall/gjson"
)

type step struct {
	Name       string `json:"name"`
	NodeName   string `json:"nodeName"`
	ServiceURL string `json:"serviceUrl"`
	Data       string `json:"data"`
	Weight     *int64 `json:"weight"`
	Condition  string `json:"condition"`
	Dependency string `json:"dependency"`
}

type node struct {
	RouterType string `json:"routerType"`
	Steps      []step `json:"steps"`
}

type graph struct {
	Nodes map[string]node `json:"nodes"`
}

var spec graph

type result struct {
	body   []byte
	status int
	err    error
}

func callService(url string, input []byte, headers http.Header) ([]byte, int, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(input))
	if err != nil {
		return nil, 500, err
	}
	for name, values := range headers {
		req.Header[name] = values
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 500, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 500, err
	}
	return body, resp.StatusCode, nil
}

func executeStep(s step, input []byte, headers http.Header) ([]byte, int, error) {
	if s.NodeName != "" {
		return routeStep(s.NodeName, input, headers)
	}
	return callService(s.ServiceURL, input, headers)
}

func routeStep(name string, input []byte, headers http.Header) ([]byte, int, error) {
	n, ok := spec.Nodes[name]
	if !ok {
		return nil, 500, errors.New("invalid route type: ")
	}
	switch n.RouterType {
	case "Splitter":
		r, err := rand.Int(rand.Reader, big.NewInt(100))
		if err != nil {
			return nil, 500, err
		}
		var total int64
		for _, s := range n.Steps {
			total += *s.Weight
			if r.Int64() < total {
				return executeStep(s, input, headers)
			}
		}
		return nil, 500, errors.New("no route was selected by the splitter")
	case "Switch":
		if gjson.ValidBytes(input) {
			for _, s := range n.Steps {
				if s.Condition != "" && gjson.GetBytes(input, s.Condition).Exists() {
					return executeStep(s, input, headers)
				}
			}
		}
		return nil, 404, errors.New("None of the routes matched with the switch condition")
	case "Ensemble":
		channels := make([]chan result, len(n.Steps))
		for i, s := range n.Steps {
			channels[i] = make(chan result)
			go func(s step, out chan result) {
				body, status, err := executeStep(s, input, headers)
				out <- result{body, status, err}
			}(s, channels[i])
		}
		merged := map[string]interface{}{}
		for i, s := range n.Steps {
			r := <-channels[i]
			if r.err != nil {
				return nil, 500, r.err
			}
			var decoded map[string]interface{}
			if err := json.Unmarshal(r.body, &decoded); err != nil {
				return nil, 500, err
			}
			if s.Dependency == "Hard" && (r.status < 200 || r.status > 299) {
				out, err := json.Marshal(decoded)
				return out, r.status, err
			}
			key := s.Name
			if key == "" {
				key = strconv.Itoa(i)
			}
			merged[key] = decoded
		}
		out, err := json.Marshal(merged)
		if err != nil {
			return nil, 500, err
		}
		return out, 200, nil
	case "Sequence":
		var response []byte
		status := 0
		for i, s := range n.Steps {
			stepInput := input
			if s.Data == "$response" && i > 0 {
				stepInput = response
			}
			if s.Condition != "" {
				if !gjson.ValidBytes(response) {
					return nil, 500, errors.New("invalid response")
				}
				if !gjson.GetBytes(response, s.Condition).Exists() {
					return response, 200, nil
				}
			}
			var err error
			response, status, err = executeStep(s, stepInput, headers)
			if err != nil {
				return nil, 500, err
			}
			if s.Dependency == "Hard" && (status < 200 || status > 299) {
				return response, status, nil
			}
		}
		return response, status, nil
	}
	return nil, 500, fmt.Errorf("invalid route type: %s", n.RouterType)
}

func graphHandler(w http.ResponseWriter, req *http.Request) {
	input, _ := io.ReadAll(req.Body)
	body, status, err := routeStep("root", input, http.Header{})
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		out, _ := json.Marshal(map[string]string{"error": "Failed to process request",
			"cause": err.Error()})
		w.Write(out)
		return
	}
	if json.Valid(body) {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	w.Write(body)
}

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: gorouter LISTEN_ADDR GRAPH_JSON")
	}
	if err := json.Unmarshal([]byte(os.Args[2]), &spec); err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("/", graphHandler)
	server := &http.Server{Addr: os.Args[1], Handler: mux, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 180 * time.Second}
	log.Fatal(server.ListenAndServe())
}
