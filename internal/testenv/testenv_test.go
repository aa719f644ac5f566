package testenv

import (
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	f := func(name string, timeout time.Duration, trueAfter int, want bool) {
		t.Helper()
		calls := 0
		got := Poll(timeout, time.Millisecond, func() bool {
			calls++
			return trueAfter > 0 && calls >= trueAfter
		})
		if got != want {
			t.Errorf("%s: Poll = %v after %d calls; want %v", name, got, calls, want)
		}
		if want && calls != trueAfter {
			t.Errorf("%s: %d calls; want %d (no call after true)", name, calls, trueAfter)
		}
	}
	f("true at once", time.Second, 1, true)
	f("true on the fifth call", 10*time.Second, 5, true)
	f("never true", 20*time.Millisecond, 0, false)
}

func TestPollTakesTheTimeout(t *testing.T) {
	start := time.Now()
	if Poll(50*time.Millisecond, 5*time.Millisecond, func() bool { return false }) {
		t.Fatal("Poll = true for a condition never met")
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("Poll gave up after %v; want at least the 50ms timeout", d)
	}
}
