package processor

import (
	"reflect"
	"testing"

	"github.com/taillight/taillight/sinks"
)

// A written block's buffers are kept for reuse; releaseBlock must leave no
// string behind, within length or capacity, or the decompressed Kafka
// batches those strings alias stay alive.
func TestReleaseBlockDropsReferences(t *testing.T) {
	var b sinks.Block
	b.Rows = make([]sinks.RawRow, 2, 3)
	for i := range b.Rows {
		r := &b.Rows[i]
		r.ScriptName, r.URL, r.Colo = "s", "https://x/", "AMS"
		r.HeaderNames = append(make([]string, 0, 4), "a", "b")
		r.HeaderValues = []string{"1", "2"}
		r.LogLevels, r.LogMessages, r.LogTsMs = []string{"info"}, []string{"m"}, []int64{1}
		r.ExcNames, r.ExcMessages, r.ExcStacks, r.ExcTsMs = []string{"E"}, []string{"m"}, []string{"st"}, []int64{1}
	}
	b.Rollups = []sinks.RollupRow{{RollupKey: sinks.RollupKey{ScriptName: "s", Host: "x", Route: "/"}}}
	caps := cap(b.Rows[0].HeaderNames)

	releaseBlock(&b)

	if len(b.Rows) != 0 || len(b.Rollups) != 0 || b.FirstOffset != -1 || b.LastOffset != -1 {
		t.Fatalf("block not reset: %d rows, %d rollups, offsets %d..%d", len(b.Rows), len(b.Rollups), b.FirstOffset, b.LastOffset)
	}
	for i, r := range b.Rows[:cap(b.Rows)] {
		for _, s := range [][]string{r.HeaderNames, r.HeaderValues, r.LogLevels, r.LogMessages, r.ExcNames, r.ExcMessages, r.ExcStacks} {
			if len(s) != 0 {
				t.Fatalf("row %d: nested slice not emptied: %q", i, s)
			}
			for _, v := range s[:cap(s)] {
				if v != "" {
					t.Fatalf("row %d: nested slice keeps %q past its length", i, v)
				}
			}
		}
		if r.ScriptName != "" || r.URL != "" || r.Colo != "" {
			t.Fatalf("row %d keeps strings: %+v", i, r)
		}
	}
	if cap(b.Rows[:1][0].HeaderNames) != caps {
		t.Fatalf("nested capacity not kept: %d, want %d", cap(b.Rows[:1][0].HeaderNames), caps)
	}
	if got := b.Rollups[:1][0]; !reflect.DeepEqual(got, sinks.RollupRow{}) {
		t.Fatalf("rollup row keeps strings: %+v", got)
	}
}
