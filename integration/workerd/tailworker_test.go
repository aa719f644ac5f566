package workerd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/schemas"
)

const okProducer = `export default { async fetch() { return new Response("ok"); } };`

// answer is one scripted ingest reply: a status, optional headers, or a
// dropped connection.
type answer struct {
	status int
	header map[string]func() string
	drop   bool
}

// scripted answers POSTs in order with the given answers; the last repeats.
func scripted(answers ...answer) func(http.ResponseWriter, []byte) int {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, _ []byte) int {
		mu.Lock()
		a := answers[min(n, len(answers)-1)]
		n++
		mu.Unlock()
		if a.drop {
			hijackClose(w)
			return 0
		}
		for k, v := range a.header {
			w.Header().Set(k, v())
		}
		return a.status
	}
}

func constant(s string) func() string { return func() string { return s } }

// TestTailWorkerRetries checks tail-worker.js against an ingest endpoint that
// fails: transient failures are retried until the batch is accepted (and it
// arrives intact), Retry-After is honoured, permanent ones are not retried,
// and retries stop at MAX_ATTEMPTS.
func TestTailWorkerRetries(t *testing.T) {
	bin := requireWorkerd(t)
	const base = 20 // RETRY_BASE_MS: backoff alone stays far below a second
	tests := []struct {
		name     string
		answers  []answer
		posts    int           // POSTs expected in all
		accepted bool          // whether the last one is accepted
		minGap   time.Duration // least delay before the second POST
		logged   string        // expected in workerd's output once done
	}{
		{name: "503 once, then accepted", answers: []answer{{status: 503}, {status: 202}}, posts: 2, accepted: true},
		{name: "Retry-After seconds", answers: []answer{{status: 503, header: map[string]func() string{"Retry-After": constant("1")}}, {status: 202}}, posts: 2, accepted: true, minGap: 900 * time.Millisecond},
		{name: "Retry-After HTTP date on 429", answers: []answer{{status: 429, header: map[string]func() string{"Retry-After": func() string {
			return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
		}}}, {status: 202}}, posts: 2, accepted: true, minGap: 800 * time.Millisecond},
		{name: "connection dropped twice, then accepted", answers: []answer{{drop: true}, {drop: true}, {status: 200}}, posts: 3, accepted: true},
		{name: "400 is not retried", answers: []answer{{status: 400}}, posts: 1, logged: "after 1 attempt(s): HTTP 400"},
		{name: "gives up after MAX_ATTEMPTS", answers: []answer{{status: 500}}, posts: 3, logged: "after 3 attempt(s): HTTP 500"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("/retry/case%d", i) // a slug the URL rules leave alone
			in := newIngest(t, scripted(tc.answers...))
			wd := startWithTail(t, bin, okProducer, in, map[string]string{"RETRY_BASE_MS": fmt.Sprint(base), "MAX_ATTEMPTS": "3"})
			get(t, wd.URL(), path, nil)

			done := func() bool {
				ps := in.snapshot()
				// Accepted, or the Tail Worker gave up (and said so).
				return len(ps) > 0 && ps[len(ps)-1].status/100 == 2 || strings.Contains(wd.Output(), "giving up")
			}
			waitFor(t, wd, 30*time.Second, "the Tail Worker to finish", done)
			ps := in.snapshot()
			if len(ps) != tc.posts {
				t.Fatalf("%d POSTs; want %d (statuses %v)", len(ps), tc.posts, statuses(ps))
			}
			for i, p := range ps[1:] {
				if !bytes.Equal(p.body, ps[0].body) {
					t.Fatalf("attempt %d sent a different body:\n%s\nfirst:\n%s", i+2, p.body, ps[0].body)
				}
			}
			if gap := ps[1%len(ps)].at.Sub(ps[0].at); len(ps) > 1 && gap < tc.minGap {
				t.Fatalf("second POST %s after the first; want at least %s (Retry-After)", gap, tc.minGap)
			}
			items, err := schemas.DecodeAll(ps[0].body)
			if err != nil || len(items) != 1 || items[0].Event == nil || items[0].Event.Request == nil ||
				items[0].Event.Request.URL != wd.URL()+path {
				t.Fatalf("POSTed body %s (err %v); want one TraceItem for the request", ps[0].body, err)
			}
			if last := ps[len(ps)-1].status/100 == 2; last != tc.accepted {
				t.Fatalf("last POST answered %d; want accepted=%v; workerd output:\n%s", ps[len(ps)-1].status, tc.accepted, wd.Output())
			}
			if tc.logged != "" && !strings.Contains(wd.Output(), tc.logged) {
				t.Fatalf("workerd output lacks %q:\n%s", tc.logged, wd.Output())
			}
		})
	}
}

func statuses(ps []post) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.status
	}
	return out
}

// splitHarness calls tail-worker.js's tail() directly with the JSON array it
// is sent, as the runtime would with a batch of many TraceItems, and answers
// with JSON.stringify(events) so the test can check the unsplit encoding.
const splitHarness = `
import tailWorker from "./tail-worker.js";
export default {
  async fetch(request, env) {
    const events = await request.json();
    try {
      await tailWorker.tail(events, env);
    } catch (err) {
      return new Response(String(err), { status: 500 });
    }
    return new Response(JSON.stringify(events));
  },
};
`

// TestTailWorkerSplitsLargeBatches checks that a tail() batch whose JSON
// exceeds MAX_BATCH_BYTES is cut between items into POSTs of at most that
// many UTF-8 bytes (an oversized item alone), in order, and that a batch
// under the limit is one POST of exactly JSON.stringify(events).
func TestTailWorkerSplitsLargeBatches(t *testing.T) {
	bin := requireWorkerd(t)
	in := newIngest(t, nil)
	const limit = 4096
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	wd, err := testenv.StartWorkerd(ctx, testenv.WorkerdConfig{
		Binary: bin,
		Producer: testenv.WorkerdWorker{
			Modules: []testenv.WorkerdModule{
				{Name: "harness.js", Source: splitHarness},
				testenv.CloudflareModule(t, "tail-worker.js"), testenv.CloudflareModule(t, "taillight-forward.js"),
			},
			Bindings: map[string]string{"INGEST_URL": in.url(), "INGEST_TOKEN": testToken, "MAX_BATCH_BYTES": fmt.Sprint(limit)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer wd.Close()

	// Items of 3 bytes per "€": byte and character counts differ threefold.
	item := func(i, euros int) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"outcome":"ok","logs":[{"message":["%s"],"level":"log","timestamp":%d}],"scriptName":"s%d"}`, strings.Repeat("€", euros), i, i))
	}
	tests := []struct {
		name  string
		items []json.RawMessage
		posts int
	}{
		{name: "small batch is one POST", items: []json.RawMessage{item(0, 10), item(1, 10), item(2, 10)}, posts: 1},
		{name: "large batch is cut", items: func() []json.RawMessage {
			var xs []json.RawMessage
			for i := range 40 {
				xs = append(xs, item(i, 100+i*7)) // 400..1200 bytes of euros each
			}
			return xs
		}()},
		{name: "oversized item goes alone", items: []json.RawMessage{item(0, 10), item(1, 2000), item(2, 10)}, posts: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(in.snapshot())
			sent, _ := json.Marshal(tc.items)
			res, err := client.Post(wd.URL(), "application/json", bytes.NewReader(sent))
			if err != nil {
				t.Fatal(err)
			}
			stringified, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("harness: %d %s", res.StatusCode, stringified)
			}
			ps := in.snapshot()[before:] // tail() returned only after every POST was accepted
			if tc.posts > 0 && len(ps) != tc.posts {
				t.Fatalf("%d POSTs; want %d", len(ps), tc.posts)
			}
			if len(ps) == 1 && !bytes.Equal(ps[0].body, stringified) {
				t.Fatalf("unsplit POST body differs from JSON.stringify(events):\n%s\n%s", ps[0].body, stringified)
			}
			var got []json.RawMessage
			for i, p := range ps {
				var part []json.RawMessage
				if err := json.Unmarshal(p.body, &part); err != nil || len(part) == 0 {
					t.Fatalf("POST %d is not a non-empty JSON array (%v): %.200s", i, err, p.body)
				}
				if len(p.body) > limit && len(part) > 1 {
					t.Fatalf("POST %d has %d bytes and %d items; want at most %d bytes unless alone", i, len(p.body), len(part), limit)
				}
				if p.auth != "Bearer "+testToken {
					t.Fatalf("POST %d Authorization %q", i, p.auth)
				}
				got = append(got, part...)
			}
			if len(got) != len(tc.items) {
				t.Fatalf("%d items arrived in %d POSTs; want %d", len(got), len(ps), len(tc.items))
			}
			for i := range got {
				var a, b any
				_ = json.Unmarshal(got[i], &a)
				_ = json.Unmarshal(tc.items[i], &b)
				if fmt.Sprint(a) != fmt.Sprint(b) {
					t.Fatalf("item %d arrived as %.100s; want %.100s (order or content changed)", i, got[i], tc.items[i])
				}
			}
			if tc.posts == 0 && len(ps) < 2 {
				t.Fatalf("a %d-byte batch went in %d POST(s); want it cut under %d bytes", len(stringified), len(ps), limit)
			}
			t.Logf("%d items, %d bytes as one array: %d POSTs", len(tc.items), len(stringified), len(ps))
		})
	}
}
