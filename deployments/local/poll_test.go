package local

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// waitUntil checks cond on a ticker until it holds or timeout passes, and
// reports whether it held.
func waitUntil(timeout, every time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// procGone reports whether pid no longer runs: absent, or a zombie awaiting
// its reaper (field 3 of /proc/<pid>/stat, after the parenthesised name).
func procGone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}
