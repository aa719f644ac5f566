package processor

import (
	"testing"
	"time"
)

// TestCutClockPutOff checks that blocks put off while behind are cut
// together: the first sets the later cut, blocks due before it join it (no
// later than lingerBehind lingers after their own start), and a partition
// that keeps up is cut at its tick unless a later cut is pending.
func TestCutClockPutOff(t *testing.T) {
	linger := 500 * time.Millisecond
	c := cutClock{linger: linger, due: map[uint64]int64{}}
	t0 := time.Unix(1000, 0)
	tick := t0.Add(linger).UnixNano()

	if at := c.putOff(tick, t0, false); at != 0 {
		t.Fatalf("keeping up, nothing put off: cut at %d; want 0 (at tick)", at)
	}
	first := c.putOff(tick, t0, true)
	if want := t0.Add(lingerBehind * linger).UnixNano(); first != want {
		t.Fatalf("first put off to %v; want %v", time.Unix(0, first), time.Unix(0, want))
	}
	// Started later, due at the same tick: joins the first.
	if at := c.putOff(tick, t0.Add(100*time.Millisecond), true); at != first {
		t.Fatalf("second behind block cut at %v; want %v", time.Unix(0, at), time.Unix(0, first))
	}
	// Keeping up, due before the later cut: joins it.
	if at := c.putOff(tick, t0.Add(200*time.Millisecond), false); at != first {
		t.Fatalf("block keeping up cut at %v; want the later cut %v", time.Unix(0, at), time.Unix(0, first))
	}
	// Started long before: never more than lingerBehind lingers after its start.
	early := t0.Add(-3 * linger)
	if at, want := c.putOff(tick, early, true), early.Add(lingerBehind*linger).UnixNano(); at != want {
		t.Fatalf("early block cut at %v; want %v", time.Unix(0, at), time.Unix(0, want))
	}
	// Past the later cut, keeping up: cut at the tick again.
	if at := c.putOff(first+1, t0.Add(lingerBehind*linger), false); at != 0 {
		t.Fatalf("keeping up after the later cut: %d; want 0", at)
	}
	// Behind again: a new later cut.
	start := time.Unix(0, first)
	if at, want := c.putOff(first+linger.Nanoseconds(), start, true), start.Add(lingerBehind*linger).UnixNano(); at != want {
		t.Fatalf("new later cut %v; want %v", time.Unix(0, at), time.Unix(0, want))
	}
}
