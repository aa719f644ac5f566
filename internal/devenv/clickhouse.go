package devenv

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrClickHouseNotFound is returned (wrapped) when no ClickHouse server binary
// can be found. This package never installs one.
var ErrClickHouseNotFound = errors.New("clickhouse server binary not found")

// ErrPortInUse is returned (wrapped) when a port a server must listen on is
// taken by another process.
var ErrPortInUse = errors.New("port already in use")

// ClickHouseInstallHint tells people how to get ClickHouse; it ends every
// "binary missing" error.
const ClickHouseInstallHint = "install it with `make deps` or `deployments/local/install.sh clickhouse` in a taillight checkout (Debian: apt-get install clickhouse-server), or download the single binary from https://clickhouse.com/docs/install and put it on $PATH"

// DefaultClickHouseStartTimeout bounds the wait for a server to answer.
const DefaultClickHouseStartTimeout = 60 * time.Second

// ClickHouseConfig describes one private ClickHouse server.
type ClickHouseConfig struct {
	// Dir holds the server's config, data and logs. Default "": a new
	// temporary directory, removed by Close. A directory given here is kept
	// by Close, so a later server started on it finds the same data.
	Dir string
	// TCPPort is the native-protocol port and HTTPPort the HTTP port, both on
	// 127.0.0.1. Default 0: a free port, chosen anew if it is taken between
	// choosing and binding. A non-zero port that is taken is an error
	// wrapping ErrPortInUse.
	TCPPort, HTTPPort int
	// Log receives start/stop messages. Default: discarded.
	Log *slog.Logger
	// StartTimeout bounds the wait for the server to answer SELECT 1, per
	// start. Default DefaultClickHouseStartTimeout.
	StartTimeout time.Duration
	// Binary is the server executable: Debian's clickhouse-server or the
	// upstream single binary clickhouse (run as "clickhouse server").
	// Default: FindClickHouse.
	Binary string
	// ExtraConfig is raw XML inserted at the end of config.xml's root
	// element, e.g. ClickHouseClusterXML's <remote_servers>, <zookeeper> and
	// <macros>. Default "": a single server, as before.
	ExtraConfig string

	// skipPortCheck lets tests reach the server's own "address in use" path.
	skipPortCheck bool
}

// ClickHouse is a private clickhouse-server process: listening on 127.0.0.1
// only, with its own config.xml and users.xml in its directory (no system
// config, nothing under /var/lib/clickhouse), a `default` user without
// password and a `readonly` user (profile readonly: readonly=1, 30 s and
// 100 000 result rows per query) for dashboards. Its methods are safe for
// concurrent use.
type ClickHouse struct {
	log        *slog.Logger
	extra      string // ClickHouseConfig.ExtraConfig
	bin        string
	args       []string
	dir        string
	removeDir  bool
	timeout    time.Duration
	checkPorts bool

	portMu   sync.Mutex // apart from mu: Addr must not wait for a Start
	tcpPort  int
	httpPort int

	mu     sync.Mutex
	proc   *clickHouseProc // nil while stopped
	closed bool
}

type clickHouseProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
}

// StartClickHouse writes a config for cfg, starts the server and returns once
// it answers SELECT 1 over HTTP and accepts native connections. ctx bounds the
// start, not the server's life. The caller must call Close.
func StartClickHouse(ctx context.Context, cfg ClickHouseConfig) (*ClickHouse, error) {
	c, err := newClickHouse(cfg)
	if err != nil {
		return nil, fmt.Errorf("start clickhouse: %w", err)
	}
	// Ports we chose may be taken by someone else before the server binds
	// them; then choose again rather than fail a test for a race. A port the
	// caller chose is not retried.
	for attempt := 1; ; attempt++ {
		err = c.Start(ctx)
		if err == nil {
			return c, nil
		}
		var taken *clickHousePortTakenError
		if !errors.As(err, &taken) || taken.port == 0 || taken.port == cfg.TCPPort || taken.port == cfg.HTTPPort || attempt == 3 {
			break
		}
		c.log.Warn("clickhouse port taken meanwhile; choosing new ports", "err", err)
		if err := c.choosePorts(cfg.TCPPort, cfg.HTTPPort); err != nil {
			break
		}
	}
	_ = c.Close()
	return nil, err
}

func newClickHouse(cfg ClickHouseConfig) (*ClickHouse, error) {
	if cfg.TCPPort < 0 || cfg.TCPPort > 65535 || cfg.HTTPPort < 0 || cfg.HTTPPort > 65535 {
		return nil, fmt.Errorf("ports %d and %d: want 0 (free) or 1-65535", cfg.TCPPort, cfg.HTTPPort)
	}
	if cfg.TCPPort != 0 && cfg.TCPPort == cfg.HTTPPort {
		return nil, fmt.Errorf("tcp and http port are both %d", cfg.TCPPort)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.StartTimeout
	if timeout <= 0 {
		timeout = DefaultClickHouseStartTimeout
	}

	bin := cfg.Binary
	if bin != "" {
		if err := Executable(bin); err != nil {
			return nil, fmt.Errorf("%w: %v; %s", ErrClickHouseNotFound, err, ClickHouseInstallHint)
		}
	} else {
		var err error
		bin, err = FindClickHouse()
		if err != nil {
			return nil, err
		}
	}

	c := &ClickHouse{
		log:        log.With("server", "clickhouse"),
		extra:      cfg.ExtraConfig,
		bin:        bin,
		timeout:    timeout,
		checkPorts: !cfg.skipPortCheck,
	}
	if filepath.Base(bin) == "clickhouse" {
		c.args = []string{"server"}
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "taillight-clickhouse-")
		if err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		c.dir, c.removeDir = dir, true
	} else {
		dir, err := filepath.Abs(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("data dir %s: %w", cfg.Dir, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		c.dir = dir
	}
	if err := c.choosePorts(cfg.TCPPort, cfg.HTTPPort); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// choosePorts sets the ports (a free one for each 0) and writes the config.
func (c *ClickHouse) choosePorts(tcp, http int) error {
	var err error
	if tcp == 0 {
		if tcp, err = FreePort(); err != nil {
			return err
		}
	}
	for http == 0 || http == tcp {
		if http, err = FreePort(); err != nil {
			return err
		}
	}
	c.portMu.Lock()
	c.tcpPort, c.httpPort = tcp, http
	c.portMu.Unlock()
	if err := writeClickHouseConfigExtra(c.dir, tcp, http, c.extra); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// FreePort returns a loopback TCP port that was free a moment ago, for a
// server that is started next.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Addr is the native-protocol address, "127.0.0.1:PORT" (what clickhouse-go
// v2 dials).
func (c *ClickHouse) Addr() string {
	c.portMu.Lock()
	defer c.portMu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.tcpPort))
}

// HTTPAddr is the HTTP interface's address, "127.0.0.1:PORT".
func (c *ClickHouse) HTTPAddr() string {
	c.portMu.Lock()
	defer c.portMu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.httpPort))
}

// Dir is the server's directory: config.xml, users.xml, data/ and log/
// (server.log, server.err.log, stdout.log).
func (c *ClickHouse) Dir() string { return c.dir }

// PID is the server's process id, 0 while it is stopped (or after it died).
func (c *ClickHouse) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reapLocked()
	if c.proc == nil {
		return 0
	}
	return c.proc.cmd.Process.Pid
}

// reapLocked forgets a process that has exited by itself (a crash, or a
// kill from outside), so Start can start it again.
func (c *ClickHouse) reapLocked() {
	if c.proc == nil {
		return
	}
	select {
	case <-c.proc.done:
		SignalGroup(c.proc.cmd.Process.Pid, true) // anything left in the group
		c.log.Warn("clickhouse had exited", "err", c.proc.err)
		c.proc = nil
	default:
	}
}

// Start starts the server again on the same ports and data after Stop or
// Kill, and waits until it answers (bounded by ctx and StartTimeout). It is an
// error to Start a running or closed server.
func (c *ClickHouse) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("start clickhouse: server is closed")
	}
	c.reapLocked()
	if c.proc != nil {
		return fmt.Errorf("start clickhouse: already running (pid %d)", c.proc.cmd.Process.Pid)
	}
	t0 := time.Now()
	if err := c.startLocked(ctx); err != nil {
		return fmt.Errorf("start clickhouse (%s, dir %s): %w", c.bin, c.dir, err)
	}
	c.log.Info("clickhouse ready", "addr", c.Addr(), "http", c.HTTPAddr(), "dir", c.dir, "took", time.Since(t0))
	return nil
}

func (c *ClickHouse) startLocked(ctx context.Context) error {
	nativeAddr, httpAddr := c.Addr(), c.HTTPAddr()
	if c.checkPorts {
		for _, p := range [][2]string{{"tcp", nativeAddr}, {"http", httpAddr}} {
			ln, err := net.Listen("tcp", p[1])
			if err != nil {
				_, port, _ := net.SplitHostPort(p[1])
				n, _ := strconv.Atoi(port)
				return &clickHousePortTakenError{port: n, err: fmt.Errorf("%s port %s: %w (another process listens there; pick another port, or 0 for a free one): %v", p[0], p[1], ErrPortInUse, err)}
			}
			_ = ln.Close()
		}
	}
	logDir := filepath.Join(c.dir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("create log dir: %w", err)
	}
	errLog := filepath.Join(logDir, "server.err.log")
	// Only what this start appends to the logs explains its failure.
	errOff, outOff := FileSize(errLog), FileSize(filepath.Join(logDir, "stdout.log"))
	out, err := os.OpenFile(filepath.Join(logDir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open stdout log: %w", err)
	}
	defer out.Close() // the child has its own descriptor

	args := append(append([]string(nil), c.args...), "--config-file="+filepath.Join(c.dir, "config.xml"))
	// Not exec.CommandContext: ctx bounds the start, not the server's life.
	cmd := exec.Command(c.bin, args...)
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = ProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", c.bin, err)
	}
	p := &clickHouseProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	c.proc = p

	failure := func(what string) error {
		c.killLocked()
		errText := clickHouseReadFrom(errLog, errOff)
		if errText == "" {
			errText = clickHouseReadFrom(filepath.Join(logDir, "stdout.log"), outOff)
		}
		tail := clickHouseTail(errText, 20)
		if m := clickHouseAddrInUse.FindStringSubmatch(errText); m != nil {
			port, _ := strconv.Atoi(m[1])
			return &clickHousePortTakenError{port: port, err: fmt.Errorf("%s: %w: %s (another process listens there; pick another port, or 0 for a free one); server log:\n%s", what, ErrPortInUse, m[0], tail)}
		}
		if tail == "" {
			tail = "(empty)"
		}
		return fmt.Errorf("%s; last lines of %s:\n%s", what, errLog, tail)
	}

	deadline := time.NewTimer(c.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	// No keep-alive: an idle connection of ours would hold up a later Stop.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	pingURL := "http://" + httpAddr + "/?query=SELECT%201"
	for {
		select {
		case <-p.done:
			return failure(fmt.Sprintf("server exited before answering (%v)", p.err))
		case <-deadline.C:
			return failure(fmt.Sprintf("server did not answer SELECT 1 within %s (StartTimeout)", c.timeout))
		case <-ctx.Done():
			return failure(fmt.Sprintf("gave up waiting for the server: %v", ctx.Err()))
		case <-tick.C:
			if clickHouseAnswers(ctx, client, pingURL, nativeAddr) {
				return nil
			}
		}
	}
}

// clickHouseAddrInUse matches 18.16's "Address already in use: 127.0.0.1:9000"
// and, without the port, newer releases' wording.
var clickHouseAddrInUse = regexp.MustCompile(`Address already in use(?:: *(?:\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+))?`)

// clickHousePortTakenError is a port-in-use failure that names the port (0
// when the server's log did not).
type clickHousePortTakenError struct {
	port int
	err  error
}

func (e *clickHousePortTakenError) Error() string { return e.err.Error() }
func (e *clickHousePortTakenError) Unwrap() error { return e.err }

// clickHouseAnswers reports whether SELECT 1 over HTTP returns 1 and the
// native port accepts a connection.
func clickHouseAnswers(ctx context.Context, client *http.Client, url, nativeAddr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(bytes.TrimSpace(body)) != "1" {
		return false
	}
	conn, err := net.DialTimeout("tcp", nativeAddr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// Stop stops the server gracefully (SIGTERM to its process group) and keeps
// its data for Start. If ctx ends first (or after 30 s when ctx has no
// deadline) the group is killed and Stop returns an error saying so. Stopping
// a stopped server does nothing.
func (c *ClickHouse) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopLocked(ctx)
}

func (c *ClickHouse) stopLocked(ctx context.Context) error {
	p := c.proc
	if p == nil {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	t0 := time.Now()
	pid := p.cmd.Process.Pid
	SignalGroup(pid, false)
	select {
	case <-p.done:
		SignalGroup(pid, true) // anything left in the group
		c.proc = nil
		c.log.Info("clickhouse stopped", "took", time.Since(t0))
		return nil
	case <-ctx.Done():
		c.killLocked()
		return fmt.Errorf("stop clickhouse (pid %d): not stopped after SIGTERM (%v); killed it", pid, ctx.Err())
	}
}

// Kill kills the server's process group with SIGKILL (a crash: data written
// so far stays) and waits for it to exit. Start brings it back.
func (c *ClickHouse) Kill() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.killLocked()
	return nil
}

func (c *ClickHouse) killLocked() {
	p := c.proc
	if p == nil {
		return
	}
	SignalGroup(p.cmd.Process.Pid, true)
	<-p.done // SIGKILL cannot be caught; the process ends
	c.proc = nil
	c.log.Info("clickhouse killed")
}

// Close stops the server (killing it if it does not stop within 10 s) and
// removes its directory if StartClickHouse created it. It is idempotent.
func (c *ClickHouse) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopErr := c.stopLocked(ctx)
	if c.removeDir {
		if err := os.RemoveAll(c.dir); err != nil {
			return errors.Join(stopErr, fmt.Errorf("remove clickhouse dir: %w", err))
		}
	}
	return stopErr
}

// FindClickHouse returns the ClickHouse server binary: clickhouse-server
// (Debian's package) on $PATH or in /usr/sbin, else the upstream single
// binary clickhouse. The error wraps ErrClickHouseNotFound and says how to
// install it.
func FindClickHouse() (string, error) {
	var tried []string
	for _, name := range []string{"clickhouse-server", "clickhouse"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		tried = append(tried, name+" on $PATH")
		// /usr/sbin is not on every user's PATH.
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin"} {
			p := filepath.Join(dir, name)
			if Executable(p) == nil {
				return p, nil
			}
			tried = append(tried, p)
		}
	}
	return "", fmt.Errorf("%w (looked for %s): %s", ErrClickHouseNotFound, strings.Join(tried, ", "), ClickHouseInstallHint)
}

// Executable reports why p is not an executable file, or nil when it is.
func Executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// FileSize returns the size of the file at p, 0 when it cannot be read.
func FileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// clickHouseReadFrom returns up to 64 KiB of file p from offset off on (the
// end of it, when more was written).
func clickHouseReadFrom(p string, off int64) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	if size := FileSize(p); size-off > 64<<10 {
		off = size - 64<<10
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 64<<10))
	return string(b)
}

// LogTail returns the last n non-empty lines of what was appended to the
// file at path after offset off (at most the last 64 KiB), for error
// messages that quote a server's log.
func LogTail(path string, off int64, n int) string {
	return clickHouseTail(clickHouseReadFrom(path, off), n)
}

// clickHouseTail returns the last n non-empty lines of s.
func clickHouseTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	var keep []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

// writeClickHouseConfig writes config.xml and users.xml into dir.
//
// The format is ClickHouse 18.16's (root element <yandex>, which current
// releases still accept). Everything lives under dir; only 127.0.0.1 is
// listened on; no interserver, MySQL or other ports; no system log tables
// (query_log, part_log, …: none configured, none created), small caches and
// a warning-level log, so a server starts in well under a second and several
// fit side by side.
func writeClickHouseConfig(dir string, tcpPort, httpPort int) error {
	return writeClickHouseConfigExtra(dir, tcpPort, httpPort, "")
}

// The server's config files, templates shared with
// deployments/local/clickhouse.sh, which fills in the same placeholders:
// @DIR@ (the directory, XML-escaped), @TCP_PORT@, @HTTP_PORT@ and @EXTRA@
// (raw XML; the script leaves it empty). users.xml has none.
var (
	//go:embed clickhouse-config.xml
	clickHouseConfigXML string
	//go:embed clickhouse-users.xml
	clickHouseUsersXML string
)

// writeClickHouseConfigExtra is writeClickHouseConfig with extra XML inserted
// before the root element's end (ClickHouseConfig.ExtraConfig).
func writeClickHouseConfigExtra(dir string, tcpPort, httpPort int, extra string) error {
	var esc strings.Builder
	_ = xml.EscapeText(&esc, []byte(filepath.Clean(dir)))
	config := strings.NewReplacer(
		"@DIR@", esc.String(),
		"@TCP_PORT@", strconv.Itoa(tcpPort),
		"@HTTP_PORT@", strconv.Itoa(httpPort),
		"@EXTRA@", extra,
	).Replace(clickHouseConfigXML)
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(config), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "users.xml"), []byte(clickHouseUsersXML), 0o644)
}
