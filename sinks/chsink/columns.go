package chsink

import (
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/taillight/taillight/sinks"
)

// rawColumns turns a block's rows into the column slices of the trace_items
// INSERT (traceItemsColumns order). Reused through a pool: reset keeps the
// capacity. The string and nested slices point into the block's rows, which
// outlive the INSERT.
type rawColumns struct {
	eventTsMs                                    []uint64
	script, kind, outcome, execModel, entrypoint []string
	dispatchNS, doID, scriptVersion, detail      []string
	url, host, route, method                     []string
	status                                       []uint16
	colo                                         []string
	headerNames, headerValues                    [][]string
	logLevels, logMessages                       [][]string
	logTs                                        [][]int64
	excNames, excMessages, excStacks             [][]string
	excTs                                        [][]int64
	cpu, wall                                    []uint32
	truncated                                    []uint8
	redactionVersion                             []uint16
	topic                                        []string
	partition                                    []int32
	offset                                       []uint64
	worker                                       []string

	scratch ptrScratch // kept across packets by reset
}

func (c *rawColumns) fill(b *sinks.Block) { c.fillRows(b.Topic, b.Rows) }

// fillRows appends rows of topic.
func (c *rawColumns) fillRows(topic string, rows []sinks.RawRow) {
	for i := range rows {
		r := &rows[i]
		c.eventTsMs = append(c.eventTsMs, uint64(r.EventTsMs))
		c.script = append(c.script, r.ScriptName)
		c.kind = append(c.kind, r.EventKind)
		c.outcome = append(c.outcome, r.Outcome)
		c.execModel = append(c.execModel, r.ExecutionModel)
		c.entrypoint = append(c.entrypoint, r.Entrypoint)
		c.dispatchNS = append(c.dispatchNS, r.DispatchNamespace)
		c.doID = append(c.doID, r.DurableObjectID)
		c.scriptVersion = append(c.scriptVersion, r.ScriptVersion)
		c.detail = append(c.detail, r.Detail)
		c.url = append(c.url, r.URL)
		c.host = append(c.host, r.Host)
		c.route = append(c.route, r.Route)
		c.method = append(c.method, r.Method)
		c.status = append(c.status, r.Status)
		c.colo = append(c.colo, r.Colo)
		c.headerNames = append(c.headerNames, r.HeaderNames)
		c.headerValues = append(c.headerValues, r.HeaderValues)
		c.logLevels = append(c.logLevels, r.LogLevels)
		c.logMessages = append(c.logMessages, r.LogMessages)
		c.logTs = append(c.logTs, r.LogTsMs)
		c.excNames = append(c.excNames, r.ExcNames)
		c.excMessages = append(c.excMessages, r.ExcMessages)
		c.excStacks = append(c.excStacks, r.ExcStacks)
		c.excTs = append(c.excTs, r.ExcTsMs)
		c.cpu = append(c.cpu, r.CPUTimeMs)
		c.wall = append(c.wall, r.WallTimeMs)
		var t uint8
		if r.Truncated {
			t = 1
		}
		c.truncated = append(c.truncated, t)
		c.redactionVersion = append(c.redactionVersion, r.RedactionVersion)
		c.topic = append(c.topic, topic)
		c.partition = append(c.partition, r.KafkaPartition)
		c.offset = append(c.offset, uint64(r.KafkaOffset))
		c.worker = append(c.worker, r.WorkerID)
	}
}

func (c *rawColumns) columns() []any {
	return []any{
		c.eventTsMs, c.script, c.kind, c.outcome, c.execModel,
		c.entrypoint, c.dispatchNS, c.doID, c.scriptVersion,
		c.detail, c.url, c.host, c.route, c.method, c.status, c.colo,
		c.headerNames, c.headerValues,
		c.logLevels, c.logMessages, c.logTs,
		c.excNames, c.excMessages, c.excStacks, c.excTs,
		c.cpu, c.wall, c.truncated, c.redactionVersion,
		c.topic, c.partition, c.offset, c.worker,
	}
}

func (c *rawColumns) appendTo(batch driver.Batch) error {
	return appendColumns(batch, traceItemsColumns, c.columns(), &c.scratch)
}

// chunkRows is how many rows go into one data packet of a trace_items
// INSERT. The driver builds a packet in column buffers it allocates afresh
// for every INSERT and resets (keeping their capacity) after each packet,
// so sending a large block as several packets bounds that memory by the
// packet and reuses it, instead of growing buffers to the whole block. The
// server squashes the packets of one INSERT into one part
// (min_insert_block_size_rows), so the table sees the same parts.
//
// chunkBytes bounds a packet by the bytes of its strings as well: with large
// items (20 KiB of logs each) 2048 rows made 40 MiB packets, and every
// pooled connection kept a buffer that size.
const (
	chunkRows  = 2048
	chunkBytes = 2 << 20
)

// chunkEnd returns the end of the chunk of rows starting at lo: at most
// chunkRows rows and, past the first row, at most about chunkBytes.
func chunkEnd(rows []sinks.RawRow, lo int) int {
	n := 0
	for i := lo; i < len(rows) && i-lo < chunkRows; i++ {
		n += rowBytes(&rows[i])
		if n > chunkBytes && i > lo {
			return i
		}
	}
	return min(lo+chunkRows, len(rows))
}

// rowBytes is about how many bytes a row's strings take in a packet.
func rowBytes(r *sinks.RawRow) int {
	n := 128 + len(r.ScriptName) + len(r.URL) + len(r.Detail) + len(r.Host) + len(r.Route) + len(r.Outcome)
	for _, ss := range [][]string{r.HeaderNames, r.HeaderValues, r.LogMessages, r.ExcNames, r.ExcMessages, r.ExcStacks} {
		for _, s := range ss {
			n += len(s) + 8
		}
	}
	return n
}

// appendChunks appends b's rows to batch, sending a data packet after every
// chunkRows rows but the last ones (Send sends those).
func (c *rawColumns) appendChunks(batch driver.Batch, b *sinks.Block) error {
	defer c.reset()
	for lo, hi := 0, 0; lo < len(b.Rows); lo = hi {
		hi = chunkEnd(b.Rows, lo)
		c.fillRows(b.Topic, b.Rows[lo:hi])
		if err := c.appendTo(batch); err != nil {
			return err
		}
		c.reset()
		if hi < len(b.Rows) {
			if err := batch.Flush(); err != nil {
				return fmt.Errorf("send rows %d..%d: %w", lo, hi-1, err)
			}
		}
	}
	return nil
}

// reset empties the slices, dropping references into the block's rows so
// the pool does not keep them alive.
func (c *rawColumns) reset() {
	clear(c.script)
	clear(c.kind)
	clear(c.outcome)
	clear(c.execModel)
	clear(c.entrypoint)
	clear(c.dispatchNS)
	clear(c.doID)
	clear(c.scriptVersion)
	clear(c.detail)
	clear(c.url)
	clear(c.host)
	clear(c.route)
	clear(c.method)
	clear(c.colo)
	clear(c.headerNames)
	clear(c.headerValues)
	clear(c.logLevels)
	clear(c.logMessages)
	clear(c.logTs)
	clear(c.excNames)
	clear(c.excMessages)
	clear(c.excStacks)
	clear(c.excTs)
	clear(c.topic)
	clear(c.worker)
	*c = rawColumns{
		eventTsMs: c.eventTsMs[:0], script: c.script[:0], kind: c.kind[:0], outcome: c.outcome[:0],
		execModel: c.execModel[:0], entrypoint: c.entrypoint[:0], dispatchNS: c.dispatchNS[:0],
		doID: c.doID[:0], scriptVersion: c.scriptVersion[:0], detail: c.detail[:0], url: c.url[:0],
		host: c.host[:0], route: c.route[:0], method: c.method[:0], status: c.status[:0], colo: c.colo[:0],
		headerNames: c.headerNames[:0], headerValues: c.headerValues[:0],
		logLevels: c.logLevels[:0], logMessages: c.logMessages[:0], logTs: c.logTs[:0],
		excNames: c.excNames[:0], excMessages: c.excMessages[:0], excStacks: c.excStacks[:0], excTs: c.excTs[:0],
		cpu: c.cpu[:0], wall: c.wall[:0], truncated: c.truncated[:0], redactionVersion: c.redactionVersion[:0],
		topic: c.topic[:0], partition: c.partition[:0], offset: c.offset[:0], worker: c.worker[:0],
		scratch: c.scratch,
	}
}

// rollupColumns turns a block's rollup rows, plus its mark row, into the
// column slices of the rollup_journal INSERT (rollupJournalColumns order).
type rollupColumns struct {
	topic                                  []string
	partition                              []int32
	first, last                            []uint64
	kind                                   []uint8
	minute                                 []int64
	script, host, method, route, colo, out []string
	requests, errors, exceptions           []uint64
	s4xx, s5xx, cpu, wall                  []uint64
	committed                              []int64
	ns, worker                             []string
}

// fill adds b's rows, stamped committed (unix seconds).
func (c *rollupColumns) fill(b *sinks.Block, committed int64) {
	// The mark row first: it carries no counts, only the block's range.
	c.add(b, &sinks.RollupRow{RollupKey: sinks.RollupKey{Kind: sinks.KindMark}})
	for i := range b.Rollups {
		if b.Rollups[i].Kind == sinks.KindMark {
			continue
		}
		c.add(b, &b.Rollups[i])
	}
	for len(c.committed) < len(c.kind) {
		c.committed = append(c.committed, committed)
	}
}

func (c *rollupColumns) add(b *sinks.Block, r *sinks.RollupRow) {
	c.topic = append(c.topic, b.Topic)
	c.partition = append(c.partition, b.Partition)
	c.first = append(c.first, uint64(b.FirstOffset))
	c.last = append(c.last, uint64(b.LastOffset))
	c.kind = append(c.kind, uint8(r.Kind))
	c.minute = append(c.minute, r.Minute)
	c.script = append(c.script, r.ScriptName)
	c.host = append(c.host, r.Host)
	c.method = append(c.method, r.Method)
	c.route = append(c.route, r.Route)
	c.colo = append(c.colo, r.Colo)
	c.out = append(c.out, r.Outcome)
	c.requests = append(c.requests, r.Requests)
	c.errors = append(c.errors, r.Errors)
	c.exceptions = append(c.exceptions, r.Exceptions)
	c.s4xx = append(c.s4xx, r.Status4xx)
	c.s5xx = append(c.s5xx, r.Status5xx)
	c.cpu = append(c.cpu, r.CPUTimeMsSum)
	c.wall = append(c.wall, r.WallTimeMsSum)
	c.ns = append(c.ns, r.DispatchNamespace)
	c.worker = append(c.worker, r.WorkerID)
}

func (c *rollupColumns) len() int { return len(c.kind) }

func (c *rollupColumns) appendTo(batch driver.Batch) error {
	return appendColumns(batch, rollupJournalColumns, []any{
		c.topic, c.partition, c.first, c.last, c.kind, c.minute,
		c.script, c.host, c.method, c.route, c.colo, c.out,
		c.requests, c.errors, c.exceptions, c.s4xx, c.s5xx, c.cpu, c.wall, c.committed,
		c.ns, c.worker,
	}, nil)
}

func (c *rollupColumns) reset() {
	for _, s := range [][]string{c.topic, c.script, c.host, c.method, c.route, c.colo, c.out, c.ns, c.worker} {
		clear(s)
	}
	*c = rollupColumns{
		topic: c.topic[:0], partition: c.partition[:0], first: c.first[:0], last: c.last[:0],
		kind: c.kind[:0], minute: c.minute[:0], script: c.script[:0], host: c.host[:0],
		method: c.method[:0], route: c.route[:0], colo: c.colo[:0], out: c.out[:0],
		requests: c.requests[:0], errors: c.errors[:0], exceptions: c.exceptions[:0],
		s4xx: c.s4xx[:0], s5xx: c.s5xx[:0], cpu: c.cpu[:0], wall: c.wall[:0],
		committed: c.committed[:0], ns: c.ns[:0], worker: c.worker[:0],
	}
}

// appendColumns appends one slice per column: the driver's columnar fast
// path, with no per-row reflection.
// sp, when not nil, keeps the Nested columns' scratch across calls.
func appendColumns(batch driver.Batch, names []string, cols []any, sp *ptrScratch) error {
	if len(cols) != len(names) {
		return fmt.Errorf("chsink: %d column slices for %d columns", len(cols), len(names))
	}
	if sp == nil {
		sp = new(ptrScratch)
	}
	for i, col := range cols {
		bc := batch.Column(i)
		var err error
		// The driver's Array.Append walks the outer slice by reflection,
		// and AppendRow of a []T boxes every element into an interface (an
		// allocation per string); a []*T row is appended element by element
		// with pointers, which box for free.
		switch v := col.(type) {
		case [][]string:
			err = appendRows(bc, v, &sp.str)
		case [][]int64:
			err = appendRows(bc, v, &sp.i64)
		default:
			err = bc.Append(col)
		}
		if err != nil {
			return fmt.Errorf("column %s: %w", names[i], err)
		}
	}
	return nil
}

// ptrScratch holds the reused []*T rows of appendRows.
type ptrScratch struct {
	str boxedRows[string]
	i64 boxedRows[int64]
}

// boxedRows is a []*T scratch array and its prefixes, each boxed once:
// boxing a slice into AppendRow's interface allocates its header, once per
// row and Nested column otherwise. A boxed prefix stays valid while the
// elements of the array it views are rewritten.
type boxedRows[T any] struct {
	ptrs  []*T
	boxes []any // boxes[n] is ptrs[:n]
}

// row points the scratch array at r and returns ptrs[:len(r)] boxed.
func (b *boxedRows[T]) row(r []T) any {
	if len(r) > cap(b.ptrs) {
		b.ptrs = make([]*T, max(len(r), 2*cap(b.ptrs), 16))
		b.boxes = b.boxes[:0] // they view the old array
	}
	for i := range r {
		b.ptrs[i] = &r[i]
	}
	for len(b.boxes) <= len(r) {
		b.boxes = append(b.boxes, b.ptrs[:len(b.boxes)])
	}
	return b.boxes[len(r)]
}

// release drops the pointers, which alias the block's rows.
func (b *boxedRows[T]) release() { clear(b.ptrs) }

func appendRows[T any](bc driver.BatchColumn, rows [][]T, scratch *boxedRows[T]) error {
	defer scratch.release()
	for _, r := range rows {
		if err := bc.AppendRow(scratch.row(r)); err != nil {
			return err
		}
	}
	return nil
}
