package integration

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/taillight/taillight/internal/testenv"
)

// stallProxy forwards TCP connections to target once opened; until then it
// accepts them and never answers, as a SIGSTOPped server does.
type stallProxy struct {
	ln     net.Listener
	target string
	open   atomic.Bool
	mu     sync.Mutex
	held   []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.held {
			c.Close()
		}
		p.mu.Unlock()
	})
	return p
}

func (p *stallProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.held = append(p.held, c)
		p.mu.Unlock()
		if !p.open.Load() {
			continue // held, never answered
		}
		go func() {
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			p.mu.Lock()
			p.held = append(p.held, up)
			p.mu.Unlock()
			go io.Copy(up, c)
			io.Copy(c, up)
			c.Close()
			up.Close()
		}()
	}
}

var opsAddr = regexp.MustCompile(`msg="ops listening" addr=(\S+)`)

// startLogged starts cmd with its stderr copied to ours, and returns the
// address its ops server logs.
func startLogged(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			os.Stderr.WriteString(line + "\n")
			if m := opsAddr.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("the process logged no ops address within 2 minutes")
		return ""
	}
}

// TestProcessorWaitsForClickHouse: a processor started while ClickHouse
// accepts connections but does not answer keeps running, reports why on
// /readyz, and once ClickHouse answers stores every event exactly once.
func TestProcessorWaitsForClickHouse(t *testing.T) {
	pe := newProcEnv(t, 2)
	pe.produce(t, 41, 2000, 0)
	proxy := newStallProxy(t, pe.env.ClickHouseAddr)
	cmd := exec.Command(taillightBinary(t), "process",
		"-kafka.brokers", strings.Join(pe.env.Brokers, ","), "-kafka.topic", pe.topic, "-kafka.group", "wait",
		"-clickhouse.addr", proxy.ln.Addr().String(), "-clickhouse.database", pe.db,
		"-clickhouse.user", pe.env.ClickHouseUser, "-clickhouse.password", pe.env.ClickHousePassword,
		"-clickhouse.dial-timeout", "1s", "-flush.linger", "100ms", "-listen.metrics", "127.0.0.1:0",
		"-retention.raw", "0", "-retention.rollups", "0")
	addr := startLogged(t, cmd)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})

	// Not ready, with the reason, for several connection attempts.
	unready := 0
	testenv.Eventually(t, 2*time.Minute, 500*time.Millisecond, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("the processor exited while ClickHouse did not answer: %v", err)
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "ClickHouse unreachable") {
				unready++
			}
		}
		return unready >= 3
	}, "/readyz did not report ClickHouse unreachable three times")

	proxy.open.Store(true)
	pe.waitDrained(t, 3*time.Minute)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("taillight process exited %d after SIGTERM", ee.ExitCode())
		}
		t.Fatal(err)
	}
	exited <- nil // for the cleanup
	pe.check(t)
}
