package testenv

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/taillight/taillight/internal/devenv"
)

// ErrZooKeeperNotFound is wrapped by StartZooKeeper's error when no
// ZooKeeper jar (Debian's zookeeper package) or no java is on the machine.
var ErrZooKeeperNotFound = errors.New("zookeeper not found")

// zooKeeperJars are where Debian's zookeeper/libzookeeper-java packages put
// the server jar; its manifest's Class-Path names the dependencies.
var zooKeeperJars = []string{"/usr/share/java/zookeeper.jar", "/usr/share/zookeeper/zookeeper.jar"}

// ZooKeeperConfig configures StartZooKeeper. The zero value is usable.
type ZooKeeperConfig struct {
	// Dir holds zoo.cfg, the data directory and the log. Default "": a new
	// temporary directory, removed by Close.
	Dir string
	// Log receives start/stop messages. Default: discarded.
	Log *slog.Logger
	// StartTimeout bounds the wait for "ruok" to answer "imok". Default 60s.
	StartTimeout time.Duration
}

// ZooKeeper is a private standalone ZooKeeper server on 127.0.0.1 (a free
// port), with its own zoo.cfg and data directory, no admin server, and the
// four-letter words ruok and srvr enabled.
type ZooKeeper struct {
	log       *slog.Logger
	dir       string
	removeDir bool
	port      int

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	closed bool
}

// StartZooKeeper starts a ZooKeeper server and waits until it answers
// "ruok". Close stops it.
func StartZooKeeper(ctx context.Context, cfg ZooKeeperConfig) (*ZooKeeper, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, fmt.Errorf("start zookeeper: %w: no java on PATH (deployments/local/install-zookeeper.sh installs one with the package)", ErrZooKeeperNotFound)
	}
	jar, err := findZooKeeperJar()
	if err != nil {
		return nil, err
	}
	z := &ZooKeeper{log: log, dir: cfg.Dir}
	if z.dir == "" {
		if z.dir, err = os.MkdirTemp("", "taillight-zookeeper-"); err != nil {
			return nil, fmt.Errorf("start zookeeper: temp dir: %w", err)
		}
		z.removeDir = true
	}
	fail := func(err error) (*ZooKeeper, error) {
		_ = z.Close()
		return nil, err
	}
	// A port taken between choosing and binding shows as a server that
	// exits at once; then choose again.
	for attempt := 1; ; attempt++ {
		if z.port, err = devenv.FreePort(); err != nil {
			return fail(fmt.Errorf("start zookeeper: choose port: %w", err))
		}
		err = z.start(ctx, java, jar, timeout)
		if err == nil {
			log.Info("zookeeper started", "addr", z.Addr(), "dir", z.dir)
			return z, nil
		}
		if attempt == 3 || ctx.Err() != nil || !strings.Contains(err.Error(), "exited") {
			return fail(err)
		}
	}
}

func findZooKeeperJar() (string, error) {
	for _, j := range zooKeeperJars {
		if _, err := os.Stat(j); err == nil {
			return j, nil
		}
	}
	return "", fmt.Errorf("%w: none of %s (run deployments/local/install-zookeeper.sh, or apt-get install zookeeper)", ErrZooKeeperNotFound, strings.Join(zooKeeperJars, ", "))
}

func (z *ZooKeeper) start(ctx context.Context, java, jar string, timeout time.Duration) error {
	data := filepath.Join(z.dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("start zookeeper: %w", err)
	}
	cfg := fmt.Sprintf(`# Written by taillight deployments/local/zookeeper.go on every start.
tickTime=500
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
maxClientCnxns=0
# A test server: no 64 MB transaction-log preallocation and no fsync, so
# the first session (a transaction) is quick; ClickHouse 18.16 gives up on
# a connection after about a second.
preAllocSize=4096
forceSync=no
`, data, z.port)
	cfgPath := filepath.Join(z.dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("start zookeeper: write zoo.cfg: %w", err)
	}
	logPath := filepath.Join(z.dir, "zookeeper.log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start zookeeper: %w", err)
	}
	defer out.Close()
	off := devenv.FileSize(logPath)
	cmd := exec.Command(java, "-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dzookeeper.jmx.log4j.disable=true", "-cp", jar,
		"org.apache.zookeeper.server.ZooKeeperServerMain", cfgPath)
	cmd.Dir = z.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = devenv.ProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start zookeeper: run %s: %w", java, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	z.mu.Lock()
	z.cmd, z.done = cmd, done
	z.mu.Unlock()

	t0 := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		// Ready = answers ruok and has opened a session (the first one is
		// the slowest: the JVM loads the session and transaction code).
		if reply, err := z.FourLetter(ctx, "ruok"); err == nil && reply == "imok" {
			if err := z.openSession(ctx); err == nil {
				return nil
			}
		}
		select {
		case <-done:
			z.reap()
			return fmt.Errorf("start zookeeper on %s: the server exited: %s", z.Addr(), devenv.LogTail(logPath, off, 10))
		case <-ctx.Done():
			z.kill()
			return fmt.Errorf("start zookeeper on %s: not ready after %s: %w", z.Addr(), time.Since(t0).Round(time.Millisecond), ctx.Err())
		case <-deadline.C:
			z.kill()
			return fmt.Errorf("start zookeeper on %s: no imok after %s: %s", z.Addr(), timeout, devenv.LogTail(logPath, off, 10))
		case <-tick.C:
		}
	}
}

// Addr is the client address, 127.0.0.1:port.
func (z *ZooKeeper) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(z.port)) }

// Port is the client port.
func (z *ZooKeeper) Port() int { return z.port }

// Dir is the server's directory (zoo.cfg, data/, zookeeper.log).
func (z *ZooKeeper) Dir() string { return z.dir }

// PID is the server's process id, 0 when it is not running.
func (z *ZooKeeper) PID() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.cmd == nil {
		return 0
	}
	return z.cmd.Process.Pid
}

// FourLetter sends a four-letter word (ruok, srvr) and returns the trimmed
// reply.
func (z *ZooKeeper) FourLetter(ctx context.Context, word string) (string, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", z.Addr())
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(word)); err != nil {
		return "", err
	}
	var b strings.Builder
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return strings.TrimSpace(b.String()), nil
}

// openSession opens a ZooKeeper session (the wire protocol's
// ConnectRequest) and waits for the server's ConnectResponse; the session
// is left to expire.
func (z *ZooKeeper) openSession(ctx context.Context) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", z.Addr())
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// protocolVersion int32, lastZxidSeen int64, timeOut int32 (ms),
	// sessionId int64, passwd buffer (int32 length + 16 bytes), readOnly bool.
	body := make([]byte, 0, 45)
	body = binary.BigEndian.AppendUint32(body, 0)
	body = binary.BigEndian.AppendUint64(body, 0)
	body = binary.BigEndian.AppendUint32(body, 6000)
	body = binary.BigEndian.AppendUint64(body, 0)
	body = binary.BigEndian.AppendUint32(body, 16)
	body = append(body, make([]byte, 16)...)
	body = append(body, 0)
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := conn.Write(append(msg, body...)); err != nil {
		return err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return fmt.Errorf("zookeeper connect response: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 20 || n > 1024 {
		return fmt.Errorf("zookeeper connect response: length %d", n)
	}
	resp := make([]byte, n)
	if _, err := io.ReadFull(conn, resp); err != nil {
		return fmt.Errorf("zookeeper connect response: %w", err)
	}
	if binary.BigEndian.Uint32(resp[4:8]) == 0 {
		return errors.New("zookeeper refused the session (timeout 0)")
	}
	return nil
}

func (z *ZooKeeper) reap() {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.cmd != nil {
		devenv.SignalGroup(z.cmd.Process.Pid, true)
	}
	z.cmd, z.done = nil, nil
}

func (z *ZooKeeper) kill() {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.cmd == nil {
		return
	}
	devenv.SignalGroup(z.cmd.Process.Pid, true)
	<-z.done
	z.cmd, z.done = nil, nil
}

// Close stops the server (SIGTERM, then SIGKILL after 10 s) and removes its
// directory if StartZooKeeper created it. Idempotent.
func (z *ZooKeeper) Close() error {
	z.mu.Lock()
	if z.closed {
		z.mu.Unlock()
		return nil
	}
	z.closed = true
	cmd, done := z.cmd, z.done
	z.cmd, z.done = nil, nil
	z.mu.Unlock()
	var stopErr error
	if cmd != nil {
		pid := cmd.Process.Pid
		devenv.SignalGroup(pid, false)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			stopErr = fmt.Errorf("stop zookeeper (pid %d): not stopped 10s after SIGTERM; killed it", pid)
		}
		devenv.SignalGroup(pid, true)
		<-done
		z.log.Info("zookeeper stopped")
	}
	if z.removeDir {
		if err := os.RemoveAll(z.dir); err != nil {
			return errors.Join(stopErr, fmt.Errorf("remove zookeeper dir: %w", err))
		}
	}
	return stopErr
}
