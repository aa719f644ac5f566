package chaos

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/taillight/taillight/integration"
	"github.com/taillight/taillight/internal/testenv"
)

// maxRSS bounds every processor subprocess's resident memory.
const maxRSS = 300 << 20

// fleet runs `taillight process` subprocesses of one group, capturing their
// stderr, sampling their VmRSS, and scraping /metrics before each stop.
type fleet struct {
	t     testing.TB
	bin   string
	args  []string
	group string

	mu      sync.Mutex
	logs    bytes.Buffer
	metrics bytes.Buffer
	procs   []*proc
	peak    atomic.Int64
	started int
}

type proc struct {
	f      *fleet
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	err    error
	asked  atomic.Bool // the test sent the signal that ended it
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newFleet(t testing.TB, s *stream, group string) *fleet {
	f := &fleet{t: t, bin: integration.TaillightBinary(t), args: s.processArgs(group), group: group}
	s.fleets = append(s.fleets, f)
	t.Cleanup(func() {
		for _, p := range f.running() {
			p.kill()
		}
	})
	return f
}

// start starts one more processor.
func (f *fleet) start() *proc {
	f.t.Helper()
	p := &proc{f: f, cmd: exec.Command(f.bin, f.args...), stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.mu.Lock()
		f.logs.WriteString(p.stderr.String())
		f.mu.Unlock()
		close(p.done)
	}()
	go p.sampleRSS()
	f.mu.Lock()
	f.procs = append(f.procs, p)
	f.started++
	f.mu.Unlock()
	return p
}

// all returns every processor started, exited or not.
func (f *fleet) all() []*proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*proc(nil), f.procs...)
}

// crashed fails the test, with the processor's log, if one exited without
// the test asking it to.
func (f *fleet) crashed() {
	f.t.Helper()
	for _, p := range f.all() {
		if p.exited() && !p.asked.Load() {
			f.t.Fatalf("a processor of group %s exited by itself (%v):\n%s", f.group, p.err, tail(p.stderr.String()))
		}
	}
}

// running returns the processors not yet exited.
func (f *fleet) running() []*proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*proc
	for _, p := range f.procs {
		if !p.exited() {
			out = append(out, p)
		}
	}
	return out
}

// exited reports whether the processor has exited (p.err is then set).
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) sampleRSS() {
	path := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		if kb := vmRSS(path); kb > 0 {
			for {
				old := p.f.peak.Load()
				if kb<<10 <= old || p.f.peak.CompareAndSwap(old, kb<<10) {
					break
				}
			}
		}
	}
}

func vmRSS(path string) int64 {
	fh, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

var opsAddr = regexp.MustCompile(`ops listening.*addr=(127\.0\.0\.1:\d+)`)

// scrape appends the processor's /metrics to the fleet's (waiting up to
// 30 s for it to listen).
func (p *proc) scrape() {
	t := p.f.t
	t.Helper()
	var m []string
	if !testenv.Poll(30*time.Second, 20*time.Millisecond, func() bool {
		m = opsAddr.FindStringSubmatch(p.stderr.String())
		return m != nil
	}) {
		t.Fatalf("processor did not log its metrics address within 30 s:\n%s", p.stderr.String())
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", resp.StatusCode, err)
	}
	p.f.mu.Lock()
	p.f.metrics.Write(b)
	p.f.mu.Unlock()
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	p.asked.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// term scrapes /metrics, sends SIGTERM and waits up to a minute for a clean
// exit (status 0).
func (p *proc) term() {
	t := p.f.t
	t.Helper()
	p.scrape()
	p.asked.Store(true)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		p.kill()
		t.Fatal("processor did not exit within a minute of SIGTERM")
	}
	if p.err != nil {
		t.Fatalf("processor exited with %v after SIGTERM:\n%s", p.err, tail(p.stderr.String()))
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

// finish stops every running processor with SIGTERM and checks the memory
// bound; it returns the captured logs and metrics.
func (f *fleet) finish() (logs, metrics string) {
	f.t.Helper()
	for _, p := range f.running() {
		p.term()
	}
	if peak := f.peak.Load(); peak > maxRSS {
		f.t.Errorf("a processor's VmRSS peaked at %d MiB; bound %d MiB", peak>>20, maxRSS>>20)
	} else if peak == 0 {
		f.t.Error("no VmRSS sample taken")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logs.String(), f.metrics.String()
}
