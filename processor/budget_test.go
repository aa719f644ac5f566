package processor

import (
	"fmt"
	"testing"
	"time"

	"github.com/taillight/taillight/processor/proctest"
	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

// bigRecords returns n records of about size bytes spread over partitions.
func bigRecords(partitions int32, n, size int) []proctest.Record {
	pad := make([]byte, size)
	for i := range pad {
		pad[i] = 'x'
	}
	recs := make([]proctest.Record, n)
	for i := range recs {
		v := fmt.Sprintf(`{"scriptName":"s%d","outcome":"ok","eventTimestamp":1764000000000,"logs":[{"level":"log","message":"%s","timestamp":1764000000000}]}`, i%7, pad)
		recs[i] = proctest.Record{Partition: int32(i) % partitions, Key: []byte("k"), Value: []byte(v), Timestamp: time.UnixMilli(1764000000000)}
	}
	return recs
}

// peakHeld runs a processor with the given budget over many partitions of
// large records against a slow sink and returns the most record bytes it
// held at once.
func peakHeld(t *testing.T, budget int64, noStream bool) int64 {
	const partitions, n, size = 32, 1600, 20 << 10
	c := cluster(t, partitions)
	addrs := c.ListenAddrs()
	produce(t, addrs, bigRecords(partitions, n, size))
	s := memsink.New()
	gate := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the slow sink: one write at a time, at most every 5 ms
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				select {
				case gate <- struct{}{}:
				case <-stop:
					return
				}
			}
		}
	}()
	s.OnWrite(func(*sinks.Block) error {
		select {
		case <-gate:
		case <-stop:
		}
		return nil
	})
	cfg := testConfig(addrs, "budget")
	cfg.Linger = 20 * time.Millisecond
	cfg.MemoryBudget = budget
	cfg.NoStream = noStream
	r := start(t, cfg, s)
	waitFor(t, 2*time.Minute, "every record stored", func() bool { return s.RowCount() == n })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if h := r.p.budget.held.Load(); h != 0 {
		t.Errorf("%d bytes still counted as held after the stop; want 0", h)
	}
	return r.p.budget.peak.Load()
}

// The processor holds at most its memory budget plus one poll of records,
// across all partitions, while the sink is slow; without the budget it
// holds much more.
func TestMemoryBudget(t *testing.T) {
	const budget = 4 << 20
	onePoll := int64(testConfig(nil, "").MaxPollRecords) * 2 * 21 << 10 // a record counts twice: value and row
	for _, noStream := range []bool{false, true} {
		t.Run(fmt.Sprintf("nostream=%v", noStream), func(t *testing.T) {
			peak := peakHeld(t, budget, noStream)
			t.Logf("peak held %d bytes (budget %d)", peak, budget)
			if peak > budget+onePoll {
				t.Errorf("held up to %d bytes; want at most the budget %d plus one poll %d", peak, budget, onePoll)
			}
		})
	}
	t.Run("unbounded", func(t *testing.T) {
		peak := peakHeld(t, 1<<40, true)
		t.Logf("peak held %d bytes without a budget", peak)
		if peak <= budget+onePoll {
			t.Errorf("held at most %d bytes without a budget: the slow sink does not build pressure, so the test proves nothing", peak)
		}
	})
}
