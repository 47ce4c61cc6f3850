// An oracle for the blob record formats, written with Go's standard library only: it decodes a
// batch of LogRequest records (the JSON the agent sends to a marshaller) with encoding/json into
// a struct shaped as upstream's (spec/upstream-logger.md §5.5), and writes what Go makes of it:
// the batch re-encoded by encoding/json, the csv of encoding/csv with the conversions of §5.5,
// and, for a list of URL texts, what url.Parse makes of each (its JSON and String(), or that it
// failed). The C++ tests compare their own output with these bytes.
// Usage: go run main.go BATCH.json URLS.json OUT.json
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"net/url"
	"os"
	"strconv"
	"time"
)

type logRequest struct {
	Url              *url.URL            `json:"url,omitempty"`
	Bytes            *[]byte             `json:"bytes,omitempty"`
	ContentType      string              `json:"contentType,omitempty"`
	ReqType          string              `json:"reqType,omitempty"`
	Id               string              `json:"id,omitempty"`
	SourceUri        *url.URL            `json:"sourceUri,omitempty"`
	InferenceService string              `json:"inferenceService,omitempty"`
	Namespace        string              `json:"namespace,omitempty"`
	Component        string              `json:"component,omitempty"`
	Endpoint         string              `json:"endpoint,omitempty"`
	Metadata         map[string][]string `json:"metadata,omitempty"`
	Annotations      map[string]string   `json:"annotations,omitempty"`
	CertName         string              `json:"certName,omitempty"`
	TlsSkipVerify    bool                `json:"tlsSkipVerify,omitempty"`
	OccurrenceTime   time.Time           `json:"occurrenceTime"`
}

func cells(r logRequest) []string {
	var u, b, s, m, a string
	if r.Url != nil {
		u = r.Url.String()
	}
	if r.Bytes != nil {
		b = base64.StdEncoding.EncodeToString(*r.Bytes)
	}
	if r.SourceUri != nil {
		s = r.SourceUri.String()
	}
	if r.Metadata != nil {
		text, _ := json.Marshal(r.Metadata)
		m = string(text)
	}
	if r.Annotations != nil {
		text, _ := json.Marshal(r.Annotations)
		a = string(text)
	}
	return []string{u, b, r.ContentType, r.ReqType, r.Id, s, r.InferenceService, r.Namespace,
		r.Component, r.Endpoint, m, a, r.CertName, strconv.FormatBool(r.TlsSkipVerify)}
}

func main() {
	input, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var batch []logRequest
	if err := json.NewDecoder(bytes.NewReader(input)).Decode(&batch); err != nil {
		panic(err)
	}
	encoded, err := json.Marshal(batch)
	if err != nil {
		panic(err)
	}
	var table bytes.Buffer
	writer := csv.NewWriter(&table)
	writer.Write([]string{"url", "bytes", "contentType", "reqType", "id", "sourceUri",
		"inferenceService", "namespace", "component", "endpoint", "metadata", "annotations",
		"certName", "tlsSkipVerify"})
	for _, record := range batch {
		writer.Write(cells(record))
	}
	writer.Flush()
	var texts []string
	urlInput, err := os.ReadFile(os.Args[2])
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(urlInput, &texts); err != nil {
		panic(err)
	}
	urls := []map[string]string{}
	for _, text := range texts {
		parsed, err := url.Parse(text)
		if err != nil {
			urls = append(urls, map[string]string{"error": err.Error()})
			continue
		}
		structJSON, _ := json.Marshal(parsed)
		urls = append(urls, map[string]string{"json": string(structJSON), "string": parsed.String()})
	}
	result, err := json.Marshal(map[string]interface{}{
		"json": string(encoded), "csv": table.String(), "urls": urls})
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(os.Args[3], result, 0o644); err != nil {
		panic(err)
	}
}
