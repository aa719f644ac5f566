// Package memsink is an in-memory sinks.Sink with the same delivery semantics
// as the ClickHouse sink, for tests and for `taillight dev` without
// ClickHouse.
//
// Raw rows are keyed by (topic, partition, offset): a replayed row replaces
// the earlier one. Rollup rows are stored per block, keyed by (topic,
// partition, first offset): a replayed or longer block with the same first
// offset replaces the earlier block's rows (the block with the higher
// LastOffset wins, a replay of equal length replaces). Watermark reports
// max(LastOffset)+1 over stored blocks and the highest raw offset.
//
// Faults can be injected (FailNext, FailAfterRaw, FailSchema) to test the
// processor's retry and crash paths. A Sink is safe for concurrent use.
package memsink

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/taillight/taillight/sinks"
)

// ErrInjected is the transient error returned by injected faults.
var ErrInjected = errors.New("memsink: injected transient failure")

var (
	_ sinks.Sink = (*Sink)(nil)
)

type rawKey struct {
	topic     string
	partition int32
	offset    int64
}

type blockKey struct {
	topic     string
	partition int32
	first     int64
}

type storedBlock struct {
	last    int64
	rollups []sinks.RollupRow
}

type tp struct {
	topic     string
	partition int32
}

// Sink stores blocks in memory. The zero value is not usable; call New.
type Sink struct {
	mu       sync.Mutex
	raw      map[rawKey]sinks.RawRow
	blocks   map[blockKey]storedBlock
	maxRaw   map[tp]int64
	logs     map[tp]sinks.LogIdentity
	writes   int // successful Write calls
	attempts int // every Write call

	failNext     int   // fail this many next writes with ErrInjected before storing anything
	failAfterRaw int   // store raw rows, then fail this many next writes before the rollups
	failSchema   error // when set, every write fails with it (wrapping sinks.ErrSchema)
	failStream   int   // fail this many next stream operations (Stream, Send, Close)
	streams      int   // streams closed successfully
	groups       int   // StreamGroup is partition % groups
	hook         func(*sinks.Block) error
	closed       bool
}

// New returns an empty sink.
func New() *Sink {
	return &Sink{
		raw:    make(map[rawKey]sinks.RawRow),
		blocks: make(map[blockKey]storedBlock),
		logs:   make(map[tp]sinks.LogIdentity),
		maxRaw: make(map[tp]int64),
	}
}

// FailNext makes the next n writes fail with ErrInjected before anything is
// stored (ClickHouse unreachable).
func (s *Sink) FailNext(n int) {
	s.mu.Lock()
	s.failNext = n
	s.mu.Unlock()
}

// FailAfterRaw makes the next n writes store their raw rows and then fail
// with ErrInjected before the rollup insert (a crash or network error between
// the two inserts).
func (s *Sink) FailAfterRaw(n int) {
	s.mu.Lock()
	s.failAfterRaw = n
	s.mu.Unlock()
}

// FailSchema makes every write fail with an error wrapping sinks.ErrSchema
// (on == false clears it).
func (s *Sink) FailSchema(on bool) {
	s.mu.Lock()
	if on {
		s.failSchema = fmt.Errorf("memsink: table rollup_journal has no column kind: %w", sinks.ErrSchema)
	} else {
		s.failSchema = nil
	}
	s.mu.Unlock()
}

// OnWrite sets a function called at the start of every Write, under no lock;
// a non-nil result fails the write before anything is stored. Tests use it
// to block or observe writes.
func (s *Sink) OnWrite(fn func(*sinks.Block) error) {
	s.mu.Lock()
	s.hook = fn
	s.mu.Unlock()
}

// Write commits one block (Commit).
func (s *Sink) Write(ctx context.Context, b *sinks.Block) error {
	return s.Commit(ctx, []*sinks.Block{b})
}

// Commit implements sinks.Sink: every block, or none (an
// injected fault fails the whole call, FailAfterRaw after storing the raw
// rows of all blocks). The OnWrite hook runs for each block first.
func (s *Sink) Commit(ctx context.Context, blocks []*sinks.Block) error {
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		for _, b := range blocks {
			if err := hook(b); err != nil {
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts += len(blocks)
	if s.closed {
		return errors.New("memsink: closed")
	}
	if s.failSchema != nil {
		return s.failSchema
	}
	if s.failNext > 0 {
		s.failNext--
		return ErrInjected
	}
	for _, b := range blocks {
		if b.FirstOffset < 0 || b.LastOffset < b.FirstOffset {
			return fmt.Errorf("memsink: block of partition %d covers no offsets (%d..%d)", b.Partition, b.FirstOffset, b.LastOffset)
		}
		for i := range b.Rows {
			if o := b.Rows[i].KafkaOffset; o < b.FirstOffset || o > b.LastOffset || b.Rows[i].KafkaPartition != b.Partition {
				return fmt.Errorf("memsink: row %d/%d outside block of partition %d offsets %d..%d",
					b.Rows[i].KafkaPartition, o, b.Partition, b.FirstOffset, b.LastOffset)
			}
		}
	}
	for _, b := range blocks {
		s.storeRows(b.Topic, b.Rows)
	}
	if s.failAfterRaw > 0 {
		s.failAfterRaw--
		return ErrInjected
	}
	for _, b := range blocks {
		s.writes++
		bk := blockKey{b.Topic, b.Partition, b.FirstOffset}
		if old, ok := s.blocks[bk]; ok && old.last > b.LastOffset {
			continue // a shorter block with the same first offset loses, as in ClickHouse
		}
		s.blocks[bk] = storedBlock{last: b.LastOffset, rollups: append([]sinks.RollupRow(nil), b.Rollups...)}
	}
	return nil
}

// storeRows stores raw rows of topic, replacing rows at the same
// coordinates. s.mu is held.
func (s *Sink) storeRows(topic string, rows []sinks.RawRow) {
	for i := range rows {
		r := cloneRow(&rows[i])
		key := tp{topic, r.KafkaPartition}
		s.raw[rawKey{topic, r.KafkaPartition, r.KafkaOffset}] = r
		if m, ok := s.maxRaw[key]; !ok || r.KafkaOffset > m {
			s.maxRaw[key] = r.KafkaOffset
		}
	}
}

func cloneRow(r *sinks.RawRow) sinks.RawRow {
	c := *r
	c.HeaderNames = append([]string(nil), r.HeaderNames...)
	c.HeaderValues = append([]string(nil), r.HeaderValues...)
	c.LogLevels = append([]string(nil), r.LogLevels...)
	c.LogMessages = append([]string(nil), r.LogMessages...)
	c.LogTsMs = append([]int64(nil), r.LogTsMs...)
	c.ExcNames = append([]string(nil), r.ExcNames...)
	c.ExcMessages = append([]string(nil), r.ExcMessages...)
	c.ExcStacks = append([]string(nil), r.ExcStacks...)
	c.ExcTsMs = append([]int64(nil), r.ExcTsMs...)
	return c
}

// FailStream makes the next n raw-row stream operations (opening a stream,
// Send or Close) fail with ErrInjected; a failed Close stores nothing.
func (s *Sink) FailStream(n int) {
	s.mu.Lock()
	s.failStream = n
	s.mu.Unlock()
}

// Streams returns the number of raw-row streams closed successfully.
func (s *Sink) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams
}

// streamFault returns the error a stream operation fails with, if any.
func (s *Sink) streamFault(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errors.New("memsink: closed")
	case s.failSchema != nil:
		return s.failSchema
	case s.failStream > 0:
		s.failStream--
		return ErrInjected
	}
	return nil
}

// Stream implements sinks.Sink: rows sent are kept aside and stored
// when the stream closes.
func (s *Sink) Stream(ctx context.Context, topic string, partition int32) (sinks.RawStream, error) {
	if err := s.streamFault(ctx); err != nil {
		return nil, err
	}
	return &stream{s: s, ctx: ctx, topic: topic, group: s.StreamGroup(partition)}, nil
}

// SetGroups makes partition p of StreamGroup p % n, as chsink does with n
// shards (n <= 1: one group, the default).
func (s *Sink) SetGroups(n int) {
	s.mu.Lock()
	s.groups = n
	s.mu.Unlock()
}

// StreamGroup implements sinks.Sink.
func (s *Sink) StreamGroup(partition int32) int {
	s.mu.Lock()
	n := s.groups
	s.mu.Unlock()
	if n <= 1 || partition < 0 {
		return 0
	}
	return int(partition) % n
}

type stream struct {
	s     *Sink
	ctx   context.Context
	topic string
	group int
	rows  []sinks.RawRow
	done  bool
}

func (st *stream) Send(rows []sinks.RawRow) error {
	if st.done {
		return errors.New("memsink: send on a closed stream")
	}
	if err := st.s.streamFault(st.ctx); err != nil {
		return err
	}
	for i := range rows {
		if p := rows[i].KafkaPartition; p < 0 || st.s.StreamGroup(p) != st.group {
			return fmt.Errorf("memsink: row of partition %d on a stream of group %d", p, st.group)
		}
		st.rows = append(st.rows, cloneRow(&rows[i]))
	}
	return nil
}

func (st *stream) Close() error {
	if st.done {
		return errors.New("memsink: stream closed twice")
	}
	st.done = true
	if err := st.s.streamFault(st.ctx); err != nil {
		return err
	}
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storeRows(st.topic, st.rows)
	s.streams++
	st.rows = nil
	return nil
}

func (st *stream) Abort() {
	st.done = true
	st.rows = nil
}

// Watermark implements sinks.Sink.
func (s *Sink) Watermark(ctx context.Context, topic string, partition int32) (sinks.Watermark, error) {
	if err := ctx.Err(); err != nil {
		return sinks.Watermark{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSchema != nil {
		return sinks.Watermark{}, s.failSchema
	}
	w := sinks.Watermark{Next: -1, MaxRawOffset: -1}
	for k, b := range s.blocks {
		if k.topic == topic && k.partition == partition && b.last+1 > w.Next {
			w.Next = b.last + 1
		}
	}
	if m, ok := s.maxRaw[tp{topic, partition}]; ok {
		w.MaxRawOffset = m
	}
	return w, nil
}

// LogIdentity implements sinks.Sink.
func (s *Sink) LogIdentity(ctx context.Context, topic string, partition int32) (sinks.LogIdentity, bool, error) {
	if err := ctx.Err(); err != nil {
		return sinks.LogIdentity{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.logs[tp{topic, partition}]
	return id, ok, nil
}

// SetLogIdentity implements sinks.Sink.
func (s *Sink) SetLogIdentity(ctx context.Context, topic string, partition int32, id sinks.LogIdentity) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.logs[tp{topic, partition}]; !ok || id.Generation >= cur.Generation {
		s.logs[tp{topic, partition}] = id
	}
	return nil
}

// Seal implements sinks.Sink. The memory sink keeps each block's rollup
// rows as they came and sums them when read (Totals): there is nothing to
// fold, so a seal seals no block.
func (s *Sink) Seal(ctx context.Context, log string, partitions []int32) (sinks.SealResult, error) {
	return sinks.SealResult{}, ctx.Err()
}

// Close implements sinks.Sink. Stored data stays readable.
func (s *Sink) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// Writes returns the number of successful writes and of write attempts.
func (s *Sink) Writes() (ok, attempts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes, s.attempts
}

// Rows returns a copy of every stored raw row, ordered by topic, partition
// and offset.
func (s *Sink) Rows() []sinks.RawRow {
	s.mu.Lock()
	keys := make([]rawKey, 0, len(s.raw))
	for k := range s.raw {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.topic != b.topic {
			return a.topic < b.topic
		}
		if a.partition != b.partition {
			return a.partition < b.partition
		}
		return a.offset < b.offset
	})
	out := make([]sinks.RawRow, len(keys))
	for i, k := range keys {
		out[i] = s.raw[k]
	}
	s.mu.Unlock()
	return out
}

// RowCount returns the number of stored raw rows.
func (s *Sink) RowCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.raw)
}

// Key identifies one rollup total: a RollupRow's key.
type Key = sinks.RollupKey

// Totals are the summed counters of one Key.
type Totals struct {
	Requests, Errors, Exceptions, Status4xx, Status5xx, CPUTimeMsSum, WallTimeMsSum uint64
}

// Add adds a rollup row's counters to t.
func (t *Totals) Add(r *sinks.RollupRow) {
	t.Merge(Totals{r.Requests, r.Errors, r.Exceptions, r.Status4xx, r.Status5xx, r.CPUTimeMsSum, r.WallTimeMsSum})
}

// Merge adds o's counters to t.
func (t *Totals) Merge(o Totals) {
	t.Requests += o.Requests
	t.Errors += o.Errors
	t.Exceptions += o.Exceptions
	t.Status4xx += o.Status4xx
	t.Status5xx += o.Status5xx
	t.CPUTimeMsSum += o.CPUTimeMsSum
	t.WallTimeMsSum += o.WallTimeMsSum
}

// Totals returns what the query-side views would show: the sum of every
// stored block's rollup rows per key. Mark rows are skipped.
func (s *Sink) Totals() map[Key]Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Key]Totals)
	for _, b := range s.blocks {
		for i := range b.rollups {
			r := &b.rollups[i]
			if r.Kind == sinks.KindMark {
				continue
			}
			k := r.RollupKey
			t := out[k]
			t.Add(r)
			out[k] = t
		}
	}
	return out
}

// Blocks returns the number of stored blocks.
func (s *Sink) Blocks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.blocks)
}
