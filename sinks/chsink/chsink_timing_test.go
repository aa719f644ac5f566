package chsink

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const benchRows = 5000

// BenchmarkWriteNull writes blocks into ENGINE = Null copies of the tables:
// the client's cost (column building, encoding, LZ4, the wire) and the
// server's parsing, with no storage.
func BenchmarkWriteNull(b *testing.B) {
	w := newWriter(b, sharedClickHouse(b), true)
	null := w.cfg.Database + "_null"
	exec(b, w, "CREATE DATABASE IF NOT EXISTS "+null)
	b.Cleanup(func() { _ = w.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+null) })
	for _, table := range []string{TableTraceItems, TableRollupJournal} {
		exec(b, w, fmt.Sprintf("CREATE TABLE %s.%s AS $db.%s ENGINE = Null", null, table, table))
	}
	cfg := w.cfg
	cfg.Database = null
	nw, err := New(context.Background(), cfg, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	defer nw.Close()
	benchWrite(b, nw)
}

// BenchmarkWriteReal writes blocks into the real ReplacingMergeTree tables.
func BenchmarkWriteReal(b *testing.B) {
	benchWrite(b, newWriter(b, sharedClickHouse(b), true))
}

func benchWrite(b *testing.B, w *Writer) {
	ctx := context.Background()
	blk := testBlock("bench", 0, 0, benchRows-1)
	b.ReportAllocs()
	var off int64
	for b.Loop() {
		// Move the block along the partition so the real table gets new
		// keys each time, as a processor's blocks do.
		for i := range blk.Rows {
			blk.Rows[i].KafkaOffset += off - blk.FirstOffset
		}
		blk.LastOffset += off - blk.FirstOffset
		blk.FirstOffset = off
		if err := w.Write(ctx, blk); err != nil {
			b.Fatal(err)
		}
		off = blk.LastOffset + 1
	}
	b.ReportMetric(float64(b.N*len(blk.Rows))/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(len(blk.Rows)), "rows/block")
}

// BenchmarkFillColumns is the client-side transposition of rows into
// column slices alone.
func BenchmarkFillColumns(b *testing.B) {
	blk := testBlock("bench", 0, 0, benchRows-1)
	var rc rawColumns
	var rr rollupColumns
	b.ReportAllocs()
	for b.Loop() {
		rc.fill(blk)
		rr.fill(blk, 0)
		rc.reset()
		rr.reset()
	}
	b.ReportMetric(float64(b.N*len(blk.Rows))/b.Elapsed().Seconds(), "rows/s")
}
