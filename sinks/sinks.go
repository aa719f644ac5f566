// Package sinks defines what the processor hands to storage: a Block of raw
// rows and rollup rows cut from one Kafka partition, and the Sink contract that
// stores it with an exactly-once effect.
//
// Delivery scheme (see docs/processing.md): raw rows are keyed by their
// Kafka coordinates so a replayed record collapses into the original; the
// rollup rows of a block are written in one INSERT, keyed by the block's
// (log, partition, first offset), so a replayed block replaces its earlier
// rows. That INSERT is the commit point; Watermark reads it back.
package sinks

import (
	"context"
	"errors"
	"strconv"
)

// RollupKind names which view a rollup row feeds.
type RollupKind uint8

// Rollup kinds. KindMark rows carry no counts; every block writes one so the
// watermark advances even when a block produced no other rollup row.
const (
	KindMark     RollupKind = 0
	KindEndpoint RollupKind = 1 // endpoint_errors_1m
	KindColo     RollupKind = 2 // colo_requests_1m
	KindScript   RollupKind = 3 // script_outcomes_1m
)

// RawRow is one redacted TraceItem flattened into trace_items columns.
// Nested columns are parallel slices of equal length.
type RawRow struct {
	EventTsMs         int64 // eventTimestamp in ms; the Kafka record timestamp when null
	ScriptName        string
	EventKind         string
	Outcome           string
	ExecutionModel    string
	Entrypoint        string
	DispatchNamespace string
	DurableObjectID   string
	ScriptVersion     string
	Detail            string // kind-specific: cron, queue, rpc method, mail from, WebSocket event type…
	URL               string
	Host              string
	Route             string
	Method            string
	Status            uint16
	Colo              string
	HeaderNames       []string
	HeaderValues      []string
	LogLevels         []string
	LogMessages       []string
	LogTsMs           []int64
	ExcNames          []string
	ExcMessages       []string
	ExcStacks         []string
	ExcTsMs           []int64
	CPUTimeMs         uint32
	WallTimeMs        uint32
	Truncated         bool
	RedactionVersion  uint16
	KafkaPartition    int32
	KafkaOffset       int64
	WorkerID          string // the Dynamic Worker (workerId), "" for none
}

// Reset empties r for reuse. Its nested slices keep their capacity but no
// longer reference the strings they held: rows alias decoded Kafka batches,
// and a stale entry past a slice's length would keep one alive.
func (r *RawRow) Reset() {
	clear(r.HeaderNames)
	clear(r.HeaderValues)
	clear(r.LogLevels)
	clear(r.LogMessages)
	clear(r.ExcNames)
	clear(r.ExcMessages)
	clear(r.ExcStacks)
	*r = RawRow{
		HeaderNames: r.HeaderNames[:0], HeaderValues: r.HeaderValues[:0],
		LogLevels: r.LogLevels[:0], LogMessages: r.LogMessages[:0], LogTsMs: r.LogTsMs[:0],
		ExcNames: r.ExcNames[:0], ExcMessages: r.ExcMessages[:0], ExcStacks: r.ExcStacks[:0], ExcTsMs: r.ExcTsMs[:0],
	}
}

// RollupKey is the (kind, minute, key) a RollupRow is counted under; being
// comparable, it can key a map of totals. Fields that are not part of a
// kind's key are left empty. Every kind but the mark is keyed by
// DispatchNamespace; KindEndpoint and KindScript also by WorkerID (KindColo
// is not split per Worker: see processor/rollup).
type RollupKey struct {
	Kind              RollupKind
	Minute            int64 // unix seconds, a multiple of 60
	DispatchNamespace string
	WorkerID          string
	ScriptName        string
	Host              string
	Method            string
	Route             string
	Colo              string
	Outcome           string
}

// RollupRow is one aggregate delta of a block for one RollupKey.
type RollupRow struct {
	RollupKey
	Requests      uint64
	Errors        uint64
	Exceptions    uint64
	Status4xx     uint64
	Status5xx     uint64
	CPUTimeMsSum  uint64
	WallTimeMsSum uint64
}

// Block is everything one flush of one partition writes. It covers the
// records FirstOffset..LastOffset inclusive (poison records included, which
// produce no raw row).
type Block struct {
	Topic       string
	Partition   int32
	FirstOffset int64
	LastOffset  int64
	Rows        []RawRow
	Rollups     []RollupRow
}

// Reset empties b for reuse, keeping its capacity.
func (b *Block) Reset() {
	b.FirstOffset, b.LastOffset = -1, -1
	b.Rows = b.Rows[:0]
	b.Rollups = b.Rollups[:0]
}

// Watermark is what a sink knows of a partition when it is assigned.
type Watermark struct {
	// Next is the first offset not yet covered by a committed block
	// (last committed block's LastOffset+1), or -1 when none was committed.
	Next int64
	// MaxRawOffset is the highest offset with a raw row, or -1. A block that
	// starts at Next must reach at least this offset before it is written, so
	// a block redone after a crash covers every raw row of the one it replaces.
	MaxRawOffset int64
}

// Sink is the storage contract of the processor. A block's raw rows reach
// the sink first, on a RawStream while the block fills (or inside the block
// itself), and Commit then stores its rollup rows and a mark row: the
// commit point. Every method is safe for concurrent use.
//
// Partitions and blocks are named by log name (LogName): the topic, or
// topic~N for a partition restarted on a new Kafka log.
type Sink interface {
	// Watermark reports the committed position of a partition.
	Watermark(ctx context.Context, log string, partition int32) (Watermark, error)

	// LogIdentity returns the Kafka log identity recorded for a
	// partition; ok is false when none is.
	LogIdentity(ctx context.Context, topic string, partition int32) (id LogIdentity, ok bool, err error)
	// SetLogIdentity records id for the partition; the highest generation
	// recorded wins.
	SetLogIdentity(ctx context.Context, topic string, partition int32, id LogIdentity) error

	// StreamGroup names the partitions whose rows may share a stream and a
	// Commit (in cluster mode, those stored on one shard).
	StreamGroup(partition int32) int
	// Stream opens a raw-row stream for the partitions of partition's
	// StreamGroup. ctx bounds the whole stream: cancelling it abandons it.
	// Rows sent on a stream are stored once its Close returns nil; a
	// failed stream is abandoned and its rows sent again on a new one (the
	// raw table collapses repeats).
	Stream(ctx context.Context, log string, partition int32) (RawStream, error)

	// Commit stores blocks: the raw rows they carry (none when they were
	// streamed), then all rollup rows plus one KindMark row per block, one
	// INSERT per StreamGroup. Each block lands whole or not at all; after
	// an error some groups may be stored, and committing the blocks again,
	// or a longer block with the same FirstOffset, counts nothing twice.
	// Blocks are not retained.
	Commit(ctx context.Context, blocks []*Block) error

	// Seal folds the settled committed blocks of the given partitions into
	// compact per-minute rows, so reads and storage follow minutes, not
	// blocks. It counts every block once at every moment (before, during
	// and after a seal) and is safe to repeat.
	Seal(ctx context.Context, log string, partitions []int32) (SealResult, error)

	// Close releases connections.
	Close() error
}

// ErrSchema marks a write that can never succeed until an operator acts (a
// missing table or column, a type mismatch). Callers stop instead of retrying.
var ErrSchema = errors.New("sink schema error")

// SealResult says what one Seal call did.
type SealResult struct {
	Blocks         int  // blocks sealed
	Seals          int  // seal writes (one per partition with blocks to seal)
	DroppedJournal int  // journal partitions (10 minutes each) dropped because every block in them is sealed
	More           bool // a partition had more settled blocks than one seal takes: call again soon
}

// RawStream carries raw rows to the sink. It is used by one goroutine at a
// time.
type RawStream interface {
	// Send sends rows of the partitions of the stream's group. The caller
	// may reuse rows, and the memory their strings alias, once Send
	// returns. After an error the stream is unusable: Abort it.
	Send(rows []RawRow) error
	// Close stores every row sent and ends the stream. After an error none
	// of them may be assumed stored.
	Close() error
	// Abort abandons the stream; rows sent may or may not be stored. It is
	// a no-op after Close.
	Abort()
}

// LogIdentity says which Kafka log a partition's stored offsets belong to.
// A partition's offsets mean something only within one log: a topic deleted
// and created again, a failover to a mirrored cluster or an unclean leader
// election starts a new log whose offsets collide with the stored ones.
type LogIdentity struct {
	// Generation is 0 for the first log of a partition; each restart under
	// a new identity (taillight relog) adds one, and the partition's rows
	// are then stored under LogName(topic, Generation).
	Generation uint32
	// TopicID is the topic's UUID in hex as the broker reported it when the
	// identity was recorded, or "" when the broker has none.
	TopicID string
}

// LogName is the name a partition's rows, blocks and watermark are stored
// under: the topic for generation 0, topic~N for generation N. "~" cannot
// occur in a Kafka topic name, so a log name never collides with a topic.
func LogName(topic string, generation uint32) string {
	if generation == 0 {
		return topic
	}
	return topic + "~" + strconv.FormatUint(uint64(generation), 10)
}
