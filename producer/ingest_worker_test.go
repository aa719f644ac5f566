package producer

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taillight/taillight/schemas"
)

// TestIngestWorkerID covers the worker id a POST applies to its items: the
// ?workerId= query parameter or the Taillight-Worker-Id header, added to
// every item without one (the other bytes as received), refused when an
// item names another Worker or when the id is invalid.
func TestIngestWorkerID(t *testing.T) {
	e := newIngestEnv(t, nil)
	base := e.url
	post := func(query string, body string, hdr ...string) resp {
		t.Helper()
		e.url = base + query
		defer func() { e.url = base }()
		return e.post(t, []byte(body), hdr...)
	}
	const (
		plain   = `{"outcome":"ok","scriptName":"loader","eventTimestamp":1767225600000,"logs":[]}`
		ownSame = `{"outcome":"ok","scriptName":"loader","workerId":"app-1"}`
		ownNull = `{"outcome":"exception","scriptName":"loader","workerId":null }`
		ownB    = `{"outcome":"ok","scriptName":"loader","workerId":"app-2"}`
	)
	accepted(t, post("?workerId=app-1", "["+plain+","+ownSame+","+ownNull+"]"), 3)
	accepted(t, post("", "["+plain+"]", WorkerIDHeader, "tenant:42/app@v2"), 1)
	accepted(t, post("?workerId=app-3", plain, WorkerIDHeader, "app-3"), 1)
	accepted(t, post("", "["+ownB+"]"), 1) // per item only: verbatim
	accepted(t, post("", plain), 1)        // none at all: verbatim

	want := map[string]bool{
		`{"outcome":"ok","scriptName":"loader","eventTimestamp":1767225600000,"logs":[],"workerId":"app-1"}`: true,
		ownSame: true,
		`{"outcome":"exception","scriptName":"loader","workerId":null ,"workerId":"app-1"}`:                             true,
		`{"outcome":"ok","scriptName":"loader","eventTimestamp":1767225600000,"logs":[],"workerId":"tenant:42/app@v2"}`: true,
		`{"outcome":"ok","scriptName":"loader","eventTimestamp":1767225600000,"logs":[],"workerId":"app-3"}`:            true,
		ownB:  true,
		plain: true,
	}
	wantID := map[string]string{}
	for w := range want {
		var it schemas.TraceItem
		if err := schemas.Unmarshal([]byte(w), &it); err != nil {
			t.Fatalf("expected record %s does not decode: %v", w, err)
		}
		wantID[w] = it.WorkerID
	}
	if wantID[`{"outcome":"exception","scriptName":"loader","workerId":null ,"workerId":"app-1"}`] != "app-1" {
		t.Fatal("the appended workerId does not win over an earlier null")
	}
	for _, r := range consume(t, e.addrs, len(want)) {
		if !want[string(r.Value)] {
			t.Errorf("unexpected record %s", r.Value)
		}
		// scriptName, then the Worker: Dynamic Workers spread over the
		// partitions.
		wantKey := "loader"
		if id := wantID[string(r.Value)]; id != "" {
			wantKey += "/" + id
		}
		if string(r.Key) != wantKey {
			t.Errorf("record %s: key %q; want %q", r.Value, r.Key, wantKey)
		}
		delete(want, string(r.Value))
	}
	for w := range want {
		t.Errorf("record missing: %s", w)
	}

	refused := func(name, query, body, wantErr string, hdr ...string) {
		t.Helper()
		r := post(query, body, hdr...)
		msg, _ := r.body["error"].(string)
		if r.code != http.StatusBadRequest || !strings.Contains(msg, wantErr) {
			t.Errorf("%s: answer %d %v; want 400 with %q", name, r.code, r.body, wantErr)
		}
	}
	refused("conflict", "?workerId=app-1", "["+plain+","+ownB+"]", `item 1: workerId "app-2" conflicts with the request's workerId "app-1"`)
	refused("query and header disagree", "?workerId=a", plain, "disagree", WorkerIDHeader, "b")
	refused("two query values", "?workerId=a&workerId=b", plain, "more than one")
	refused("bad query value", "?workerId=a%20b", plain, `query parameter workerId: byte 1 is ' '`)
	refused("empty query value", "?workerId=", plain, "query parameter workerId: empty")
	refused("too long header", "", plain, "header Taillight-Worker-Id: 129 bytes", WorkerIDHeader, strings.Repeat("x", 129))
	refused("bad item value", "", `[`+plain+`,{"outcome":"ok","workerId":"a\nb"}]`, "item 1")
	if r := post("", `{"outcome":"ok","workerId":"<script>"}`); r.code != http.StatusBadRequest || r.body["index"] != float64(0) {
		t.Errorf("invalid per-item workerId: answer %d %v; want 400 naming item 0", r.code, r.body)
	}
	// Nothing of a refused request was published.
	if n := endOffsets(t, e.addrs); n != 7 {
		t.Errorf("%d records on the topic; want the 7 accepted", n)
	}
}

func TestPostWorkerIDItemFits(t *testing.T) {
	// The id is appended without escaping: every allowed byte is plain JSON.
	for c := 0; c < 256; c++ {
		id := string([]byte{'a', byte(c)})
		if schemas.ValidateWorkerID(id) != nil {
			continue
		}
		b := []byte(`{"outcome":"ok","workerId":"` + id + `"}`)
		var it schemas.TraceItem
		if err := schemas.Unmarshal(b, &it); err != nil || it.WorkerID != id || !bytes.Contains(b, []byte(id)) {
			t.Errorf("id %q: decoded %q, %v", id, it.WorkerID, err)
		}
	}
}

// FuzzIngestWorkerID checks what ingest publishes for a POST with a worker
// id: every accepted item decodes to exactly the item sent, with that
// workerId, under the key scriptName/workerId; a body it refuses is refused
// without the id too, or holds an item naming another Worker.
func FuzzIngestWorkerID(f *testing.F) {
	valid := `{"outcome":"ok","scriptName":"w","eventTimestamp":1700000000000,"event":{"request":{"url":"https://a.test/x","method":"GET"}},"logs":[],"exceptions":[]}`
	f.Add([]byte(valid), "app-1")
	f.Add([]byte("["+valid+","+`{"outcome":"ok","workerId":null }`+"]"), "tenant:42/x@y")
	f.Add([]byte(valid+"\n"+`{"outcome":"exception","workerId":"app-1"}`+"\n"), "app-1")
	f.Add([]byte(`[{"outcome":"ok","workerId":"a"},{"outcome":"ok"}]`), "b")
	f.Add([]byte(`{"outcome":"ok","workerId":"","x":{"workerId":"z"}}`), "app-1")
	c := newCluster(f)
	p := newPublisher(f, c.ListenAddrs(), nil)
	cfg := DefaultIngestConfig()
	cfg.Tokens = []string{testToken}
	in, err := NewIngest(cfg, p, testLogger(f), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, id string) {
		if schemas.ValidateWorkerID(id) != nil {
			return
		}
		now := time.Now()
		items, errBody, _, reserved := in.decode(body, id, now)
		in.release(reserved)
		plain, plainErr, _, _ := in.decode(body, "", now)
		if errBody != nil {
			if plainErr == nil && !strings.Contains(errBody.(errorBody).Error, "conflicts with the request's workerId") {
				t.Fatalf("refused with the id only: %+v", errBody)
			}
			return
		}
		if plainErr != nil || len(plain) != len(items) {
			t.Fatalf("accepted with the id (%d items) but not without: %+v", len(items), plainErr)
		}
		for i, it := range items {
			var got, want schemas.TraceItem
			if err := schemas.Unmarshal(it.Value, &got); err != nil {
				t.Fatalf("item %d as published does not decode: %v\n%s", i, err, it.Value)
			}
			if err := schemas.Unmarshal(plain[i].Value, &want); err != nil {
				t.Fatal(err)
			}
			if got.WorkerID != id || (want.WorkerID != "" && want.WorkerID != id) {
				t.Fatalf("item %d: workerId %q (sent %q); want %q", i, got.WorkerID, want.WorkerID, id)
			}
			want.WorkerID = id
			a, _ := schemas.Marshal(nil, &got)
			b, _ := schemas.Marshal(nil, &want)
			if !bytes.Equal(a, b) {
				t.Fatalf("item %d changed beyond its workerId:\n got %s\nwant %s", i, a, b)
			}
			if k := string(schemas.Key(&want)); string(it.Key) != k {
				t.Fatalf("item %d: key %q; want %q", i, it.Key, k)
			}
		}
	})
}
