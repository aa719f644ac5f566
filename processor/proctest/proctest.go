// Package proctest generates TraceItem streams with a ground truth computed
// from the generator's own choices, for the processor's unit tests and the
// integration tests. Like net/http/httptest it is test support: nothing in
// the taillight binary imports it, and it reports failures to the test
// (TB) instead of panicking.
package proctest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/taillight/taillight/processor/rollup"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

// TB is the part of testing.TB this package reports to.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Record is one record to produce (to Partition).
type Record struct {
	Partition int32
	Key       []byte
	Value     []byte
	Timestamp time.Time
}

// Truth is a generated stream and what the rollups must show for it. Valid
// holds the (partition, offset) of every valid record, assuming the records
// are produced in order to an empty topic; Poison counts the others by DLQ
// reason; Offsets is the next offset of each partition.
type Truth struct {
	Records []Record
	Valid   map[[2]int64]bool // (partition, offset) of every valid record
	Totals  map[memsink.Key]memsink.Totals
	Poison  map[string]int // by reason
	Offsets []int64        // next offset per partition after producing
	// Skew shifts the eventTimestamp of every item of a script (api, web,
	// cron) by its duration: clock skew between scripts, minutes into the
	// past or the future. The record timestamp is not shifted.
	Skew map[string]time.Duration
}

// New returns an empty stream over partitions partitions.
func New(partitions int32) *Truth {
	return &Truth{Valid: map[[2]int64]bool{}, Totals: map[memsink.Key]memsink.Totals{}, Poison: map[string]int{},
		Offsets: make([]int64, partitions)}
}

// Add appends a record; valid says whether it must become a raw row.
func (g *Truth) Add(r Record, valid bool) {
	if valid {
		g.Valid[[2]int64{int64(r.Partition), g.Offsets[r.Partition]}] = true
	}
	g.Offsets[r.Partition]++
	g.Records = append(g.Records, r)
}

func (g *Truth) count(k memsink.Key, f func(*memsink.Totals)) {
	t := g.Totals[k]
	f(&t)
	g.Totals[k] = t
}

var routes = []struct{ path, route string }{
	{"/users/%d", "/users/:id"},
	{"/health", "/health"},
	{"/orders/%d/items", "/orders/:id/items"},
}

// Generate appends n items spread over the partitions, with a ground truth
// computed from the generator's own choices (not from the processor's code).
// Every poisonEvery-th record (when > 0) is poison. An item that cannot be
// encoded fails tb.
func (g *Truth) Generate(tb TB, rng *rand.Rand, n int, poisonEvery int) {
	tb.Helper()
	base := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	parts := int32(len(g.Offsets))
	for i := range n {
		part := rng.Int32N(parts)
		ts := base.Add(time.Duration(rng.IntN(600_000)) * time.Millisecond)
		if poisonEvery > 0 && i%poisonEvery == poisonEvery-1 {
			var v, reason string
			switch rng.IntN(4) {
			case 0:
				v, reason = `{"outcome":"ok",`, "bad_json"
			case 1:
				v, reason = `{"outcome":"ok","cpuTime":"fast"}`, "wrong_type"
			case 2:
				// Well-formed, but its event time is before any Worker ran.
				v, reason = `{"outcome":"ok","eventTimestamp":946684800000}`, "out_of_range"
			default:
				v, reason = `{"outcome":"","event":null}`, "invalid"
			}
			g.Poison[reason]++
			g.Add(Record{Partition: part, Value: []byte(v), Timestamp: ts}, false)
			continue
		}
		script := []string{"api", "web", "cron"}[rng.IntN(3)]
		outcome := []string{"ok", "ok", "ok", "exception", "exceededCpu"}[rng.IntN(5)]
		cpu, wall := rng.IntN(50), rng.IntN(500)
		item := schemas.TraceItem{ScriptName: &script, Outcome: outcome, ExecutionModel: "stateless",
			CPUTime: float64(cpu), WallTime: float64(wall)}
		eventTs := ts
		if rng.IntN(10) == 0 {
			// null eventTimestamp: the record timestamp is the event time.
			eventTs = ts
		} else {
			eventTs = ts.Add(-time.Duration(rng.IntN(120_000))*time.Millisecond + g.Skew[script]) // late events, skewed clocks
			ms := eventTs.UnixMilli()
			item.EventTimestamp = &ms
		}
		minute := eventTs.Unix() / 60 * 60
		exc := 0
		if outcome == "exception" || rng.IntN(8) == 0 {
			exc = 1
			item.Exceptions = []schemas.Exception{{Name: "Error", Message: "boom", Timestamp: eventTs.UnixMilli()}}
		}
		if script == "cron" {
			item.Event = &schemas.Event{Cron: "*/5 * * * *"}
		} else {
			host := script + ".example.com"
			method := []string{"GET", "POST"}[rng.IntN(2)]
			rt := routes[rng.IntN(len(routes))]
			path := rt.path
			if strings.Contains(path, "%d") {
				path = fmt.Sprintf(path, rng.IntN(1_000_000))
			}
			req := &schemas.Request{URL: "https://" + host + path + "?q=1", Method: method,
				Headers: schemas.Headers{{Name: "authorization", Value: "Bearer s3cr3t"}, {Name: "host", Value: host}}}
			colo := []string{"SJC", "AMS", ""}[rng.IntN(3)]
			if colo != "" {
				req.Cf = []byte(`{"colo":"` + colo + `","asn":13335}`)
			} else {
				colo = rollup.UnknownColo
			}
			item.Event = &schemas.Event{Request: req}
			status := 0
			if outcome != "exception" {
				status = []int{200, 200, 201, 404, 500, 503}[rng.IntN(6)]
				item.Event.Response = &schemas.Response{Status: status}
			}
			g.count(memsink.Key{Kind: sinks.KindEndpoint, Minute: minute, ScriptName: script, Host: host, Method: method, Route: rt.route},
				func(t *memsink.Totals) {
					t.Requests++
					if outcome != "ok" || status >= 500 {
						t.Errors++
					}
					if exc > 0 || outcome == "exception" {
						t.Exceptions++
					}
					if status >= 400 && status < 500 {
						t.Status4xx++
					}
					if status >= 500 {
						t.Status5xx++
					}
				})
			g.count(memsink.Key{Kind: sinks.KindColo, Minute: minute, ScriptName: script, Colo: colo, Outcome: outcome},
				func(t *memsink.Totals) { t.Requests++ })
		}
		g.count(memsink.Key{Kind: sinks.KindScript, Minute: minute, ScriptName: script, Outcome: outcome},
			func(t *memsink.Totals) { t.Requests++; t.CPUTimeMsSum += uint64(cpu); t.WallTimeMsSum += uint64(wall) })
		v, err := schemas.Marshal(nil, &item)
		if err != nil {
			tb.Fatalf("proctest: item %d: %v", i, err)
		}
		g.Add(Record{Partition: part, Key: []byte(script), Value: v, Timestamp: ts}, true)
	}
}

// Check asserts the sink holds each valid record exactly once, nothing
// else, and rollup totals equal to the ground truth.
func (g *Truth) Check(t TB, s *memsink.Sink) {
	t.Helper()
	rows := s.Rows()
	if len(rows) != len(g.Valid) {
		t.Errorf("sink holds %d raw rows; want %d", len(rows), len(g.Valid))
	}
	for _, r := range rows {
		if !g.Valid[[2]int64{int64(r.KafkaPartition), r.KafkaOffset}] {
			t.Errorf("unexpected raw row at partition %d offset %d", r.KafkaPartition, r.KafkaOffset)
		}
		for i, n := range r.HeaderNames {
			if n == "authorization" && r.HeaderValues[i] != "REDACTED" {
				t.Errorf("authorization header not redacted: %q", r.HeaderValues[i])
			}
		}
	}
	got := s.Totals()
	for k, want := range g.Totals {
		if got[k] != want {
			t.Errorf("rollup %+v = %+v; want %+v", k, got[k], want)
		}
	}
	for k, v := range got {
		if _, ok := g.Totals[k]; !ok {
			t.Errorf("unexpected rollup %+v = %+v", k, v)
		}
	}
}
