// Package rollup aggregates redacted raw rows into per-minute rollup deltas
// for one flush block.
//
// Windows are 1-minute tumbling windows on event time: a row's minute is
// RawRow.EventTsMs floored to the minute (the processor fills a null
// eventTimestamp with the Kafka record timestamp, so raw rows and rollups
// always agree). Late events simply add to their own minute; nothing is ever
// closed, because each block's deltas are stored as they are and the views
// sum them.
//
// Three rollups, keyed as in DESIGN.md "Rollups", each also by the item's
// dispatch namespace (Workers for Platforms; it follows the script, so it
// adds no keys) and, for endpoint and script, by its Dynamic Worker id
// (workerId). The colo rollup is not split per Worker: a platform with
// thousands of Dynamic Workers would multiply its keys by the colos each
// one is reached from, for a view nobody reads per Worker; per-Worker colo
// counts come from the raw rows (saved query requests_per_colo does so).
//
//   - endpoint (KindEndpoint): (minute, script, host, method, route) with
//     requests, errors (outcome != "ok" or status >= 500), exceptions
//     (at least one exception, or outcome "exception"), status_4xx and
//     status_5xx. Fetch events only: other kinds have no URL.
//   - colo (KindColo): (minute, colo, script, outcome) with requests; colo is
//     event.request.cf.colo, "unknown" when missing. Fetch events only: other
//     kinds have no request and so no colo.
//   - script (KindScript): (minute, script, outcome) with requests and the
//     sums of cpu_time_ms and wall_time_ms. Every event kind.
//
// An Accumulator is not safe for concurrent use; the processor keeps one per
// partition.
package rollup

import (
	"strings"

	"github.com/taillight/taillight/sinks"
)

// UnknownColo is the colo of a fetch event whose request carries no cf.colo.
const UnknownColo = "unknown"

// maxInterned bounds the string intern table; past it the table is dropped
// and rebuilt, so a burst of high-cardinality routes cannot grow it forever.
const maxInterned = 1 << 16

type endpointKey struct {
	minute                      int64
	ns, worker                  string
	script, host, method, route string
}

type endpointAgg struct {
	requests, errors, exceptions, s4xx, s5xx uint64
}

type coloKey struct {
	minute                int64
	ns                    string
	colo, script, outcome string
}

type scriptKey struct {
	minute          int64
	ns, worker      string
	script, outcome string
}

type scriptAgg struct {
	requests, cpu, wall uint64
}

// Accumulator sums rollup deltas until Flush. In the steady state (keys seen
// before) Add does not allocate: maps are cleared, not reallocated, and a
// key's strings are cloned only the first time they are seen.
//
// The maps hold indexes into the aggregate slices and are written only when
// a key is new: Go updates a string key stored in a map on every assignment
// to it, so assigning the sums would store the row's strings, which alias
// the record's decompressed batch, and pin that batch until the next Flush.
type Accumulator struct {
	endpoints map[endpointKey]int32
	colos     map[coloKey]int32
	scripts   map[scriptKey]int32
	endAggs   []endpointAgg
	coloAggs  []uint64
	scrAggs   []scriptAgg
	strs      map[string]string
}

// New returns an empty Accumulator.
func New() *Accumulator {
	return &Accumulator{
		endpoints: make(map[endpointKey]int32),
		colos:     make(map[coloKey]int32),
		scripts:   make(map[scriptKey]int32),
		strs:      make(map[string]string),
	}
}

// Minute returns the start of the 1-minute window holding ms, in unix seconds.
func Minute(ms int64) int64 {
	m := ms / 60000
	if ms < 0 && ms%60000 != 0 {
		m-- // floor, not truncate, for (invalid) times before 1970
	}
	return m * 60
}

// IsError reports whether an event counts as an endpoint error.
func IsError(outcome string, status uint16) bool { return outcome != "ok" || status >= 500 }

// IsException reports whether an event counts as an endpoint exception.
func IsException(outcome string, exceptions int) bool {
	return exceptions > 0 || outcome == "exception"
}

// intern returns s itself when it is already a key in the table, else a
// clone of s stored for next time: rollup keys never alias decode buffers.
func (a *Accumulator) intern(s string) string {
	if v, ok := a.strs[s]; ok {
		return v
	}
	if len(a.strs) >= maxInterned {
		clear(a.strs)
	}
	c := strings.Clone(s)
	a.strs[c] = c
	return c
}

// Add adds one raw row's deltas. r is not retained.
func (a *Accumulator) Add(r *sinks.RawRow) {
	minute := Minute(r.EventTsMs)
	if r.EventKind == "fetch" {
		ek := endpointKey{minute, r.DispatchNamespace, r.WorkerID, r.ScriptName, r.Host, r.Method, r.Route}
		i, ok := a.endpoints[ek]
		if !ok {
			ek.script, ek.host, ek.method, ek.route = a.intern(ek.script), a.intern(ek.host), a.intern(ek.method), a.intern(ek.route)
			ek.ns, ek.worker = a.intern(ek.ns), a.intern(ek.worker)
			i = int32(len(a.endAggs))
			a.endAggs = append(a.endAggs, endpointAgg{})
			a.endpoints[ek] = i
		}
		e := &a.endAggs[i]
		e.requests++
		if IsError(r.Outcome, r.Status) {
			e.errors++
		}
		if IsException(r.Outcome, len(r.ExcNames)) {
			e.exceptions++
		}
		switch {
		case r.Status >= 400 && r.Status < 500:
			e.s4xx++
		case r.Status >= 500 && r.Status < 600:
			e.s5xx++
		}

		colo := r.Colo
		if colo == "" {
			colo = UnknownColo
		}
		ck := coloKey{minute, r.DispatchNamespace, colo, r.ScriptName, r.Outcome}
		i, ok = a.colos[ck]
		if !ok {
			ck.colo, ck.script, ck.outcome, ck.ns = a.intern(ck.colo), a.intern(ck.script), a.intern(ck.outcome), a.intern(ck.ns)
			i = int32(len(a.coloAggs))
			a.coloAggs = append(a.coloAggs, 0)
			a.colos[ck] = i
		}
		a.coloAggs[i]++
	}
	sk := scriptKey{minute, r.DispatchNamespace, r.WorkerID, r.ScriptName, r.Outcome}
	i, ok := a.scripts[sk]
	if !ok {
		sk.script, sk.outcome, sk.ns, sk.worker = a.intern(sk.script), a.intern(sk.outcome), a.intern(sk.ns), a.intern(sk.worker)
		i = int32(len(a.scrAggs))
		a.scrAggs = append(a.scrAggs, scriptAgg{})
		a.scripts[sk] = i
	}
	s := &a.scrAggs[i]
	s.requests++
	s.cpu += uint64(r.CPUTimeMs)
	s.wall += uint64(r.WallTimeMs)
}

// Len returns the number of rollup rows Flush would emit.
func (a *Accumulator) Len() int { return len(a.endpoints) + len(a.colos) + len(a.scripts) }

// Flush appends one RollupRow per key to dst, resets the accumulator and
// returns the extended slice. The rows' strings are shared with the intern
// table and must not be modified (Go strings cannot be).
func (a *Accumulator) Flush(dst []sinks.RollupRow) []sinks.RollupRow {
	for k, i := range a.endpoints {
		e := &a.endAggs[i]
		dst = append(dst, sinks.RollupRow{
			RollupKey: sinks.RollupKey{Kind: sinks.KindEndpoint, Minute: k.minute, DispatchNamespace: k.ns, WorkerID: k.worker, ScriptName: k.script, Host: k.host, Method: k.method, Route: k.route},
			Requests:  e.requests, Errors: e.errors, Exceptions: e.exceptions, Status4xx: e.s4xx, Status5xx: e.s5xx,
		})
	}
	for k, i := range a.colos {
		n := a.coloAggs[i]
		dst = append(dst, sinks.RollupRow{
			RollupKey: sinks.RollupKey{Kind: sinks.KindColo, Minute: k.minute, DispatchNamespace: k.ns, Colo: k.colo, ScriptName: k.script, Outcome: k.outcome},
			Requests:  n,
		})
	}
	for k, i := range a.scripts {
		s := &a.scrAggs[i]
		dst = append(dst, sinks.RollupRow{
			RollupKey: sinks.RollupKey{Kind: sinks.KindScript, Minute: k.minute, DispatchNamespace: k.ns, WorkerID: k.worker, ScriptName: k.script, Outcome: k.outcome},
			Requests:  s.requests, CPUTimeMsSum: s.cpu, WallTimeMsSum: s.wall,
		})
	}
	a.Reset()
	return dst
}

// Reset drops every delta, keeping the maps' storage and the intern table.
func (a *Accumulator) Reset() {
	clear(a.endpoints)
	clear(a.colos)
	clear(a.scripts)
	a.endAggs, a.coloAggs, a.scrAggs = a.endAggs[:0], a.coloAggs[:0], a.scrAggs[:0]
}
