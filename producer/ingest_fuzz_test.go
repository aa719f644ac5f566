package producer

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taillight/taillight/schemas"
)

// FuzzIngest posts arbitrary bodies with arbitrary content types and
// encodings to the ingest handler (on kfake). It must never panic, answer
// 202 only when every item is a valid TraceItem (checked against
// schemas.DecodeAll and Validate) with the exact count published, and publish
// nothing on any other answer.
func FuzzIngest(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		f.Add([]byte(fx.Raw), "application/json", false, false)
	}
	valid := `{"outcome":"ok","scriptName":"w","eventTimestamp":1700000000000,"event":{"request":{"url":"https://a.test/x","method":"GET"}},"logs":[],"exceptions":[]}`
	f.Add([]byte(valid), "", false, false)
	f.Add([]byte(valid+"\n"+valid+"\n"), "application/x-ndjson", true, false)
	f.Add([]byte("["+valid+","+valid+"]"), "text/plain;charset=UTF-8", false, true)
	f.Add([]byte(`[{"outcome":"ok"},{"outcome":`), "application/json", false, false)
	f.Add([]byte("\x1f\x8b\x08\x00garbage"), "application/json", false, true)
	f.Add([]byte("{}"), "image/png", false, false)
	f.Add([]byte("   \n"), "application/json; charset=\"", false, false)

	c := newCluster(f)
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Kafka.Brokers, cfg.Topic = c.ListenAddrs(), testTopic
	pub, err := New(cfg, testLogger(f), reg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = pub.Close(context.Background()) })
	icfg := DefaultIngestConfig()
	icfg.Tokens = []string{testToken}
	icfg.MaxBodyBytes = 1 << 20
	in, err := NewIngest(icfg, pub, testLogger(f), prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	published := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			f.Fatal(err)
		}
		var n float64
		for _, mf := range mfs {
			if mf.GetName() == "taillight_producer_records_total" {
				for _, m := range mf.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "result" && l.GetValue() == "ok" {
							n += m.GetCounter().GetValue()
						}
					}
				}
			}
		}
		return n
	}

	f.Fuzz(func(t *testing.T, body []byte, contentType string, gzipBody, gzipHeader bool) {
		sent := body
		if gzipBody {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			sent = b.Bytes()
		}
		req := httptest.NewRequest(http.MethodPost, IngestPath, bytes.NewReader(sent))
		req.Header.Set("Authorization", "Bearer "+testToken)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if gzipHeader {
			req.Header.Set("Content-Encoding", "gzip")
		}
		before := published()
		rec := httptest.NewRecorder()
		in.ServeHTTP(rec, req)
		after := published()

		var answer struct {
			Accepted int    `json:"accepted"`
			Error    string `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("answer %d is not JSON: %q", rec.Code, rec.Body.Bytes())
		}
		if rec.Code != http.StatusAccepted {
			if rec.Code < 400 || rec.Code >= 600 || answer.Error == "" {
				t.Fatalf("answer %d %q: want 202 or an error status with an error text", rec.Code, rec.Body.Bytes())
			}
			if rec.Code < 500 && after != before {
				t.Fatalf("answer %d but %v records were published", rec.Code, after-before)
			}
			return
		}
		// 202: the body as the server saw it must decode, every item valid.
		plain := sent
		if gzipHeader {
			zr, err := gzip.NewReader(bytes.NewReader(sent))
			if err != nil {
				t.Fatalf("202 for a body that is not gzip: %v", err)
			}
			if plain, err = io.ReadAll(zr); err != nil {
				t.Fatalf("202 for a broken gzip body: %v", err)
			}
		}
		items, err := schemas.DecodeAll(plain)
		if err != nil {
			t.Fatalf("202 (accepted %d) but the body does not decode: %v", answer.Accepted, err)
		}
		if len(items) == 0 || answer.Accepted != len(items) {
			t.Fatalf("202 accepted %d; the body holds %d items", answer.Accepted, len(items))
		}
		for i := range items {
			if err := items[i].Validate(); err != nil {
				t.Fatalf("202 but item %d is invalid: %v", i, err)
			}
			limits := schemas.DefaultLimits()
			if err := limits.Check(&items[i], time.Now()); err != nil {
				t.Fatalf("202 but item %d is out of range: %v", i, err)
			}
		}
		if after-before != float64(len(items)) {
			t.Fatalf("202 for %d items but %v records were published", len(items), after-before)
		}
	})
}
