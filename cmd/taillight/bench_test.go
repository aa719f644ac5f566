package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestBenchFlags: bad flags are usage errors found before any server starts.
func TestBenchFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
		msg  string
	}{
		{[]string{"bench", "-n", "0"}, exitUsage, "-n must be positive"},
		{[]string{"bench", "-partitions", "-1"}, exitUsage, "must not be negative"},
		{[]string{"bench", "-latency-rate", "-5"}, exitUsage, "must not be negative"},
		{[]string{"bench", "-log.level", "loud"}, exitUsage, "-log.level"},
		{[]string{"bench", "extra"}, exitUsage, "unexpected arguments"},
		{[]string{"bench-process", "-kafka.brokers", "x:1"}, exitUsage, "usage: taillight bench-process"},
		{[]string{"bench-ref", "-kafka.topic", "t"}, exitError, "positive count"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runMain(context.Background(), tc.args, stdio{strings.NewReader(""), &out, &errb})
			if code != tc.want || !strings.Contains(errb.String(), tc.msg) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errb.String(), tc.want, tc.msg)
			}
		})
	}
}
