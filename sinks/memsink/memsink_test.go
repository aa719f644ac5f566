package memsink_test

import (
	"context"
	"errors"
	"testing"

	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

func block(first, last int64, rawOffsets []int64, requests uint64) *sinks.Block {
	b := &sinks.Block{Topic: "t", Partition: 1, FirstOffset: first, LastOffset: last}
	for _, o := range rawOffsets {
		b.Rows = append(b.Rows, sinks.RawRow{KafkaPartition: 1, KafkaOffset: o, ScriptName: "s"})
	}
	b.Rollups = append(b.Rollups, sinks.RollupRow{RollupKey: sinks.RollupKey{Kind: sinks.KindScript, Minute: 60, ScriptName: "s", Outcome: "ok"}, Requests: requests})
	return b
}

func total(s *memsink.Sink) uint64 {
	return s.Totals()[memsink.Key{Kind: sinks.KindScript, Minute: 60, ScriptName: "s", Outcome: "ok"}].Requests
}

func TestReplaySemantics(t *testing.T) {
	ctx := context.Background()
	s := memsink.New()
	wm, err := s.Watermark(ctx, "t", 1)
	if err != nil || wm != (sinks.Watermark{Next: -1, MaxRawOffset: -1}) {
		t.Fatalf("empty Watermark = %+v, %v; want -1/-1", wm, err)
	}
	must := func(b *sinks.Block) {
		t.Helper()
		if err := s.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	must(block(0, 2, []int64{0, 1, 2}, 3))
	must(block(0, 2, []int64{0, 1, 2}, 3)) // replay
	if got := total(s); got != 3 {
		t.Fatalf("after replay total = %d; want 3", got)
	}
	must(block(0, 4, []int64{0, 1, 2, 3, 4}, 5)) // longer block, same first offset
	if got, rows := total(s), s.RowCount(); got != 5 || rows != 5 {
		t.Fatalf("after longer block total = %d rows = %d; want 5, 5", got, rows)
	}
	must(block(0, 1, []int64{0, 1}, 2)) // a shorter block loses
	if got := total(s); got != 5 {
		t.Fatalf("after shorter block total = %d; want 5", got)
	}
	must(block(5, 7, []int64{5, 7}, 2)) // offset 6 was poison: no raw row
	wm, _ = s.Watermark(ctx, "t", 1)
	if wm != (sinks.Watermark{Next: 8, MaxRawOffset: 7}) {
		t.Fatalf("Watermark = %+v; want 8/7", wm)
	}
	if other, _ := s.Watermark(ctx, "t", 2); other.Next != -1 {
		t.Fatalf("other partition Watermark = %+v; want -1", other)
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	s := memsink.New()
	s.FailNext(2)
	for i := range 2 {
		if err := s.Write(ctx, block(0, 1, []int64{0, 1}, 2)); !errors.Is(err, memsink.ErrInjected) {
			t.Fatalf("write %d: err = %v; want ErrInjected", i, err)
		}
	}
	if s.RowCount() != 0 {
		t.Fatalf("FailNext stored %d rows; want 0", s.RowCount())
	}
	s.FailAfterRaw(1)
	if err := s.Write(ctx, block(0, 1, []int64{0, 1}, 2)); !errors.Is(err, memsink.ErrInjected) {
		t.Fatalf("FailAfterRaw: err = %v; want ErrInjected", err)
	}
	wm, _ := s.Watermark(ctx, "t", 1)
	if wm != (sinks.Watermark{Next: -1, MaxRawOffset: 1}) || total(s) != 0 {
		t.Fatalf("after raw-only write: Watermark = %+v total = %d; want -1/1, 0", wm, total(s))
	}
	if err := s.Write(ctx, block(0, 1, []int64{0, 1}, 2)); err != nil {
		t.Fatal(err)
	}
	s.FailSchema(true)
	if err := s.Write(ctx, block(2, 2, []int64{2}, 1)); !errors.Is(err, sinks.ErrSchema) {
		t.Fatalf("FailSchema: err = %v; want ErrSchema", err)
	}
	if _, err := s.Watermark(ctx, "t", 1); !errors.Is(err, sinks.ErrSchema) {
		t.Fatalf("FailSchema Watermark: err = %v; want ErrSchema", err)
	}
	s.FailSchema(false)
	if ok, attempts := s.Writes(); ok != 1 || attempts != 5 {
		t.Fatalf("Writes() = %d, %d; want 1, 5", ok, attempts)
	}
}
