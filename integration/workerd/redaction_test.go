package workerd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taillight/taillight/processor/redact"
	"github.com/taillight/taillight/schemas"
)

// echoProducer logs, unredacted, the URL and headers exactly as the runtime
// handed them to the Worker. Log messages are not redacted, so each TraceItem
// carries both the runtime's input and its redacted view of it.
const echoProducer = `
export default {
  async fetch(request) {
    const headers = {};
    for (const [name, value] of request.headers) headers[name] = value;
    console.log(JSON.stringify({ url: request.url, headers }));
    return new Response("ok");
  },
};
`

const caseHeader = "x-case" // names the generated case; not a sensitive name

// seen is what echoProducer logged.
type seen struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
}

// TestRedactionMatchesWorkerd is the differential test of redaction: generated
// URLs and header names go through the real Workers runtime, and the Tail
// Worker's redacted view (posted by deployments/cloudflare/tail-worker.js)
// must equal redact.URL and redact.HeaderValue applied to what the runtime
// saw, for every URL and every header, with zero mismatches.
func TestRedactionMatchesWorkerd(t *testing.T) {
	bin := requireWorkerd(t)
	in := newIngest(t, nil)
	wd := startWithTail(t, bin, echoProducer, in, nil)

	// A fixed seed keeps make test reproducible; TAILLIGHT_DIFF_SEED and
	// TAILLIGHT_DIFF_N explore further (e.g. after changing processor/redact).
	seed, n := uint64(20261122), 400
	if v, err := strconv.ParseUint(os.Getenv("TAILLIGHT_DIFF_SEED"), 10, 64); err == nil {
		seed = v
	}
	if v, err := strconv.Atoi(os.Getenv("TAILLIGHT_DIFF_N")); err == nil && v > 0 {
		n = v
	}
	cases := genCases(rand.New(rand.NewPCG(seed, 2)), n)
	for i, c := range cases {
		hdrs := append([][2]string{{caseHeader, strconv.Itoa(i)}}, c.headers...)
		get(t, wd.URL(), c.target, hdrs)
	}

	// Collect one TraceItem per case; extra items would be a bug too.
	items := make(map[int]schemas.TraceItem, len(cases))
	var decodeErr error
	collect := func() bool {
		ps := in.snapshot()
		n := 0
		for _, p := range ps {
			n += bytes.Count(p.body, []byte(`"`+caseHeader+`":`))
		}
		if n < len(cases) { // decode only once every case may be there
			return false
		}
		clear(items)
		for _, p := range ps {
			got, err := schemas.DecodeAll(p.body)
			if err != nil {
				decodeErr = fmt.Errorf("decode tail POST %.200q: %w", p.body, err)
				return true
			}
			for _, it := range got {
				if it.Event == nil || it.Event.Request == nil {
					continue
				}
				id, ok := it.Event.Request.Headers.Get(caseHeader)
				if !ok {
					continue
				}
				n, err := strconv.Atoi(id)
				if err != nil {
					decodeErr = fmt.Errorf("case id %q", id)
					return true
				}
				if _, dup := items[n]; dup {
					decodeErr = fmt.Errorf("case %d arrived twice", n)
					return true
				}
				items[n] = it
			}
		}
		return len(items) == len(cases)
	}
	waitFor(t, wd, 90*time.Second, fmt.Sprintf("%d TraceItems from the Tail Worker", len(cases)), collect)
	if decodeErr != nil {
		t.Fatal(decodeErr)
	}
	for _, p := range in.snapshot() {
		if p.auth != "Bearer "+testToken || !strings.HasPrefix(p.ctype, "application/json") {
			t.Fatalf("tail POST has Authorization %q, Content-Type %q; want the bearer token and JSON", p.auth, p.ctype)
		}
	}

	var (
		urls, urlsRedacted, urlsRewritten int
		hdrs, hdrsRedacted                int
		mismatches                        []string
	)
	for i, c := range cases {
		it := items[i]
		req := it.Event.Request
		s, err := loggedInput(it)
		if err != nil {
			t.Fatalf("case %d (%s): %v", i, c.target, err)
		}
		if s.URL != wd.URL()+c.target {
			urlsRewritten++ // the runtime normalised what we sent; it is the input that counts
		}
		urls++
		if want := redact.URL(s.URL); req.URL != want {
			mismatches = append(mismatches, fmt.Sprintf("URL %q: runtime %q, redact.URL %q", s.URL, req.URL, want))
		}
		if req.URL != s.URL {
			urlsRedacted++
		}
		if len(req.Headers) != len(s.Headers) {
			mismatches = append(mismatches, fmt.Sprintf("case %d: runtime recorded %d headers, the Worker saw %d", i, len(req.Headers), len(s.Headers)))
		}
		for _, h := range req.Headers {
			orig, ok := s.Headers[h.Name]
			if !ok {
				mismatches = append(mismatches, fmt.Sprintf("case %d: header %q recorded but not seen by the Worker", i, h.Name))
				continue
			}
			hdrs++
			if want := redact.HeaderValue(h.Name, orig); h.Value != want {
				mismatches = append(mismatches, fmt.Sprintf("header %q: %q: runtime %q, redact.HeaderValue %q", h.Name, orig, h.Value, want))
			}
			if h.Value != orig {
				hdrsRedacted++
			}
		}
	}
	t.Logf("workerd differential redaction (seed %d): compared %d URLs (%d redacted by the runtime, %d normalised by it before the Worker saw them), %d headers (%d redacted): %d mismatches",
		seed, urls, urlsRedacted, urlsRewritten, hdrs, hdrsRedacted, len(mismatches))
	for i, m := range mismatches {
		if i == 30 {
			t.Errorf("... and %d more", len(mismatches)-30)
			break
		}
		t.Error(m)
	}
	if len(mismatches) > 0 {
		t.Fatalf("%d redaction mismatches with the Workers runtime", len(mismatches))
	}
	// The generator must exercise both outcomes, or zero mismatches proves little.
	if urlsRedacted < urls/4 || urls-urlsRedacted < urls/4 || hdrsRedacted < 200 || hdrs-hdrsRedacted < 200 {
		t.Fatalf("generated cases too one-sided: %d/%d URLs and %d/%d headers redacted", urlsRedacted, urls, hdrsRedacted, hdrs)
	}
}

// loggedInput decodes echoProducer's log line from it.
func loggedInput(it schemas.TraceItem) (seen, error) {
	var s seen
	if len(it.Logs) != 1 {
		return s, fmt.Errorf("want 1 log line from the producer, got %d", len(it.Logs))
	}
	var msg []string
	if err := json.Unmarshal(it.Logs[0].Message, &msg); err != nil || len(msg) != 1 {
		return s, fmt.Errorf("log message %s: want one string (%v)", it.Logs[0].Message, err)
	}
	if err := json.Unmarshal([]byte(msg[0]), &s); err != nil {
		return s, fmt.Errorf("log message %q: %w", msg[0], err)
	}
	return s, nil
}
