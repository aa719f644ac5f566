package processor

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taillight/taillight/sinks"
	"github.com/taillight/taillight/sinks/memsink"
)

// hang makes a memsink's writes block, ignoring their context as a hung
// network write does, until released.
type hang struct {
	mu      sync.Mutex
	on      bool
	release chan struct{}
}

func newHang() *hang { return &hang{release: make(chan struct{})} }

func (h *hang) hook(*sinks.Block) error {
	h.mu.Lock()
	on := h.on
	h.mu.Unlock()
	if on {
		<-h.release
	}
	return nil
}

func (h *hang) set(on bool) {
	h.mu.Lock()
	h.on = on
	h.mu.Unlock()
}

// Ready reports writes that hang longer than StuckAfter, and recovers.
func TestReadyReportsStuckWrites(t *testing.T) {
	c := cluster(t, 1)
	addrs := c.ListenAddrs()
	s := memsink.New()
	h := newHang()
	h.set(true)
	s.OnWrite(h.hook)
	cfg := testConfig(addrs, "stuck")
	cfg.Linger = 20 * time.Millisecond
	cfg.StuckAfter = 300 * time.Millisecond
	r := start(t, cfg, s)
	produce(t, addrs, generate(t, 1, 50, 7).Records)
	waitFor(t, 30*time.Second, "Ready reports the stuck write", func() bool {
		err := r.p.Ready()
		return err != nil && strings.Contains(err.Error(), "sink writes stuck")
	})
	h.set(false)
	close(h.release)
	waitFor(t, 30*time.Second, "stored and ready again", func() bool { return s.RowCount() == 50 && r.p.Ready() == nil })
}

// A revoke whose flush hangs in sink I/O returns within ShutdownTimeout
// plus cancelGrace, so the rebalance completes and the new owner consumes.
func TestRevokeWithHungSinkIsBounded(t *testing.T) {
	c := cluster(t, 2)
	addrs := c.ListenAddrs()
	g := generate(t, 2, 400, 8)
	produce(t, addrs, g.Records)
	hung := memsink.New()
	h := newHang()
	hung.OnWrite(h.hook)
	cfg := testConfig(addrs, "hung")
	cfg.ShutdownTimeout = time.Second
	r1 := start(t, cfg, hung)
	t.Cleanup(func() { close(h.release) }) // before r1 stops: its committer waits on the write
	waitFor(t, 30*time.Second, "P1 polled everything", func() bool { return r1.p.polled.Load() == int64(len(g.Records)) })
	h.set(true)

	// Without the bound the revoke waits for the hung write, and the new
	// member never gets a partition.
	r2 := start(t, cfg, memsink.New())
	waitFor(t, 60*time.Second, "the second member owns a partition", func() bool {
		r2.p.mu.Lock()
		defer r2.p.mu.Unlock()
		return len(r2.p.wms) > 0
	})
}
