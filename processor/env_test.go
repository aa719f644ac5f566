package processor

import (
	"testing"
	"time"
)

// TestCutClockPutOff checks that blocks put off while behind are cut
// together: the first sets the later cut lingerBehind-1 lingers after its
// tick, blocks due before it join it, and a partition that keeps up is cut
// at its tick unless a later cut is pending.
func TestCutClockPutOff(t *testing.T) {
	linger := 500 * time.Millisecond
	c := newCutClock(linger)
	tick := time.Unix(1000, 0).UnixNano()

	if at, pull := c.putOff(1, tick, false); at != 0 || pull != nil {
		t.Fatalf("keeping up, nothing put off: cut at %d; want 0 (at tick)", at)
	}
	first, pull := c.putOff(2, tick, true)
	if want := tick + (lingerBehind-1)*linger.Nanoseconds(); first != want {
		t.Fatalf("first put off to %v; want %v", time.Unix(0, first), time.Unix(0, want))
	}
	// Due at the same tick or a later one before the cut, behind or
	// keeping up: joins the first.
	for key, tk := range map[uint64]int64{3: tick, 4: tick + linger.Nanoseconds()} {
		for _, behind := range []bool{true, false} {
			if at, p := c.putOff(key, tk, behind); at != first || p != pull {
				t.Fatalf("block due at %v (behind %v) cut at %v; want the later cut %v", time.Unix(0, tk), behind, time.Unix(0, at), time.Unix(0, first))
			}
		}
	}
	if got := c.due[3]; got != first {
		t.Fatalf("a joined block is due at %v; want %v", time.Unix(0, got), time.Unix(0, first))
	}
	// Past the later cut, keeping up: cut at the tick again.
	if at, _ := c.putOff(5, first+1, false); at != 0 {
		t.Fatalf("keeping up after the later cut: %d; want 0", at)
	}
	// Behind again: a new later cut with a new channel.
	again, pull2 := c.putOff(6, first+1, true)
	if want := first + 1 + (lingerBehind-1)*linger.Nanoseconds(); again != want || pull2 == pull {
		t.Fatalf("new later cut %v (same channel: %v); want %v and a new channel", time.Unix(0, again), pull2 == pull, time.Unix(0, want))
	}
}

// TestCutClockPullIn checks that a block cut by size brings the pending
// later cut forward: the blocks put off to it are told, and are due now, so
// the committer's gather waits for them; other blocks keep their due time.
func TestCutClockPullIn(t *testing.T) {
	linger := 500 * time.Millisecond
	c := newCutClock(linger)
	tick := time.Unix(1000, 0).UnixNano()
	if got := c.pullIn(tick); got != 0 {
		t.Fatalf("nothing pending: pullIn = %d; want 0", got)
	}
	_, pull := c.putOff(1, tick, true)
	c.putOff(2, tick, false)
	c.setDue(3, tick+2*linger.Nanoseconds()) // filling, not put off
	c.setDue(2, 0)                           // cut meanwhile (its timer fired)
	now := tick + linger.Nanoseconds()
	if got := c.pullIn(now); got != now {
		t.Fatalf("pullIn = %d; want %d", got, now)
	}
	select {
	case <-pull:
	default:
		t.Fatal("the blocks put off were not told")
	}
	if c.due[1] != now || c.due[3] != tick+2*linger.Nanoseconds() {
		t.Fatalf("due after pullIn: %v; want 1 at %d, 3 unchanged", c.due, now)
	}
	if _, ok := c.due[2]; ok {
		t.Fatal("a block already cut is due again")
	}
	// Again, also with the wall clock stepped back: nothing is pending.
	for _, at := range []int64{now + 1, now - 1} {
		if got := c.pullIn(at); got != 0 {
			t.Fatalf("pulled in twice (at %d): %d", at, got)
		}
	}
	if _, p := c.putOff(4, now+linger.Nanoseconds(), true); p == pull {
		t.Fatal("a new later cut reuses the closed channel")
	}
}

// TestCutClockCaughtUp checks that the later cut is brought forward when
// the last block put off because its partition was behind has caught up,
// not before, and not for a block that merely joined it.
func TestCutClockCaughtUp(t *testing.T) {
	linger := 500 * time.Millisecond
	c := newCutClock(linger)
	tick := time.Unix(1000, 0).UnixNano()
	now := tick + linger.Nanoseconds()
	if got := c.caughtUp(1, now); got != 0 {
		t.Fatalf("nothing pending: caughtUp = %d; want 0", got)
	}
	_, pull := c.putOff(1, tick, true)
	c.putOff(2, tick, true)
	c.putOff(3, tick, false) // keeps up, joined
	c.putOff(4, tick, true)
	c.setDue(4, 0) // revoked: no longer waited for
	for _, key := range []uint64{3, 1} {
		if got := c.caughtUp(key, now); got != 0 {
			t.Fatalf("block %d caught up while 2 is behind: caughtUp = %d; want 0", key, got)
		}
	}
	select {
	case <-pull:
		t.Fatal("the later cut was brought forward while a partition is behind")
	default:
	}
	if got := c.caughtUp(2, now); got != now {
		t.Fatalf("the last behind caught up: caughtUp = %d; want %d", got, now)
	}
	select {
	case <-pull:
	default:
		t.Fatal("the blocks put off were not told")
	}
	for _, key := range []uint64{1, 2, 3} {
		if c.due[key] != now {
			t.Fatalf("block %d due at %d after caughtUp; want %d", key, c.due[key], now)
		}
	}
	if got := c.caughtUp(1, now+1); got != 0 {
		t.Fatalf("brought forward twice: %d", got)
	}
	// Past the later cut it would have had, nothing is pending either.
	later, _ := c.putOff(5, now+1, true)
	if got := c.caughtUp(5, later+1); got != 0 {
		t.Fatalf("after the later cut: caughtUp = %d; want 0", got)
	}
}
