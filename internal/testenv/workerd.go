package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/storage"
	"testing"
)

// WorkerdEnv names the environment variable that points at a workerd binary,
// overriding the copy installed by install-workerd.sh.
const WorkerdEnv = "TAILLIGHT_WORKERD"

// WorkerdInstallHint tells people how to get workerd; it ends every
// "binary missing" error.
const WorkerdInstallHint = "run deployments/local/install-workerd.sh (installs the pinned workerd from npm) or set " + WorkerdEnv + " to a workerd binary"

// ErrWorkerdNotFound is returned (wrapped) when no workerd binary can be found.
var ErrWorkerdNotFound = errors.New("workerd binary not found")

// DefaultCompatibilityDate is the compatibility date of a WorkerdWorker that
// names none.
const DefaultCompatibilityDate = "2025-06-01"

// WorkerdModule is one ES module of a Worker.
type WorkerdModule struct {
	// Name is the module's file name as other modules import it ("tail-worker.js").
	Name string
	// Source is the JavaScript text.
	Source string
}

// WorkerdWorker describes one Worker: ES modules and plain-text bindings.
type WorkerdWorker struct {
	// Modules are ES modules; the first is the Worker's entry point. Required.
	Modules []WorkerdModule
	// Bindings become text bindings on env (vars and secrets alike).
	Bindings map[string]string
	// CompatibilityDate defaults to DefaultCompatibilityDate.
	CompatibilityDate string
	// CompatibilityFlags are passed through.
	CompatibilityFlags []string
	// Extra is appended verbatim to the Worker's capnp struct, for what this
	// type does not model, e.g.
	//   durableObjectNamespaces = [(className = "Counter", uniqueKey = "c")],
	//   durableObjectStorage = (inMemory = void),
	Extra string
}

// WorkerdConfig describes one workerd process: a producer Worker serving HTTP,
// optionally with a Tail Worker attached to it (the config's `tails` list, so
// the Tail Worker's tail(events) handler receives the producer's TraceItems)
// and a streaming Tail Worker (`streamingTails`).
// Both Workers may fetch loopback addresses only.
type WorkerdConfig struct {
	// Binary is the workerd executable. Default: $TAILLIGHT_WORKERD, then the
	// copy installed by deployments/local/install-workerd.sh, then $PATH.
	Binary string
	// Addr is where the producer listens. Default "127.0.0.1:0" (a free port).
	Addr string
	// Producer is the Worker that serves HTTP. Required.
	Producer WorkerdWorker
	// Tail, when it has modules, is attached to Producer as its Tail Worker
	// (tail(events) receives TraceItem arrays).
	Tail WorkerdWorker
	// StreamingTail, when it has modules, is attached to Producer as a
	// streaming Tail Worker (tailStream(onset) returns a handler for the
	// invocation's later events).
	StreamingTail WorkerdWorker
	// StartTimeout bounds the wait for workerd to listen. Default 60s (the
	// first start after an install compiles a 160 MB binary's pages in).
	StartTimeout time.Duration
	// Output, when set, also receives workerd's stdout and stderr.
	Output io.Writer
	// Verbose passes --verbose (workerd logs uncaught errors and more).
	Verbose bool
}

// Workerd is a running workerd process. Its methods are safe for concurrent use.
type Workerd struct {
	url    string
	addr   string
	dir    string
	cmd    *exec.Cmd
	out    *workerdTailBuffer
	exited chan struct{}
	err    error // set before exited is closed

	closeOnce sync.Once
	closeErr  error
}

// StartWorkerd writes a capnp config for cfg into a temporary directory,
// starts workerd on it and returns once workerd reports that it listens. The
// context bounds the start only; Close stops the process. The caller must call
// Close.
func StartWorkerd(ctx context.Context, cfg WorkerdConfig) (*Workerd, error) {
	if len(cfg.Producer.Modules) == 0 {
		return nil, errors.New("start workerd: the producer Worker has no modules")
	}
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = FindWorkerd(); err != nil {
			return nil, fmt.Errorf("start workerd: %w", err)
		}
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 60 * time.Second
	}

	dir, err := os.MkdirTemp("", "taillight-workerd-")
	if err != nil {
		return nil, fmt.Errorf("start workerd: create config dir: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	confPath, err := writeWorkerdConfig(dir, cfg)
	if err != nil {
		return nil, fmt.Errorf("start workerd: %w", err)
	}

	// We listen ourselves and hand workerd the socket (--socket-fd): a taken
	// port is reported here, plainly, and a free port cannot be stolen between
	// choosing and binding it.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("start workerd: listen on %s (is the port taken? use port 0 for a free one): %w", cfg.Addr, err)
	}
	addr := ln.Addr().String()
	lnFile, err := ln.(*net.TCPListener).File()
	_ = ln.Close() // the dup in lnFile keeps the socket open
	if err != nil {
		return nil, fmt.Errorf("start workerd: socket file: %w", err)
	}
	defer lnFile.Close()

	// workerd writes {"event":"listen",...} on the control descriptor once the
	// socket serves requests.
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start workerd: control pipe: %w", err)
	}
	defer ctlR.Close()

	args := []string{"serve", confPath, "--socket-fd", "http=3", "--control-fd", "4"}
	if cfg.Verbose {
		args = append(args, "--verbose")
	}
	// Not exec.CommandContext: ctx bounds the start, not the process's life.
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.ExtraFiles = []*os.File{lnFile, ctlW} // fds 3 and 4
	cmd.SysProcAttr = devenv.ProcAttr()
	out := &workerdTailBuffer{max: 64 << 10}
	var w io.Writer = out
	if cfg.Output != nil {
		w = io.MultiWriter(out, cfg.Output)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		_ = ctlW.Close()
		return nil, fmt.Errorf("start workerd: run %s: %w", bin, err)
	}
	_ = ctlW.Close()

	wd := &Workerd{
		url:    "http://" + addr,
		addr:   addr,
		dir:    dir,
		cmd:    cmd,
		out:    out,
		exited: make(chan struct{}),
	}
	go func() {
		wd.err = cmd.Wait()
		close(wd.exited)
	}()
	ok = true // from here Close cleans up

	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(ctlR)
		for sc.Scan() {
			var msg struct {
				Event  string `json:"event"`
				Socket string `json:"socket"`
			}
			if json.Unmarshal(sc.Bytes(), &msg) == nil && msg.Event == "listen" && msg.Socket == "http" {
				close(listening)
				return
			}
		}
	}()

	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	select {
	case <-listening:
		return wd, nil
	case <-wd.exited:
		_ = wd.Close()
		return nil, fmt.Errorf("start workerd: exited before listening (%v); last output:\n%s", wd.err, out.last(4<<10))
	case <-timer.C:
		_ = wd.Close()
		return nil, fmt.Errorf("start workerd: not listening after %s; last output:\n%s", cfg.StartTimeout, out.last(4<<10))
	case <-ctx.Done():
		_ = wd.Close()
		return nil, fmt.Errorf("start workerd: %w; last output:\n%s", ctx.Err(), out.last(4<<10))
	}
}

// URL is the producer's base URL, "http://127.0.0.1:PORT".
func (w *Workerd) URL() string { return w.url }

// Addr is the producer's listen address, "127.0.0.1:PORT".
func (w *Workerd) Addr() string { return w.addr }

// Output returns the last 64 KiB of workerd's stdout and stderr.
func (w *Workerd) Output() string { return w.out.String() }

// Exited is closed when the workerd process has ended.
func (w *Workerd) Exited() <-chan struct{} { return w.exited }

// Close stops workerd and its process group (SIGTERM, then SIGKILL after 5s),
// waits for it and removes the config directory. It is idempotent.
func (w *Workerd) Close() error {
	w.closeOnce.Do(func() {
		pid := w.cmd.Process.Pid
		select {
		case <-w.exited:
		default:
			devenv.SignalGroup(pid, false)
			select {
			case <-w.exited:
			case <-time.After(5 * time.Second):
				devenv.SignalGroup(pid, true)
				<-w.exited
			}
		}
		// Anything left in the group (workerd does not fork, but be sure).
		devenv.SignalGroup(pid, true)
		w.closeErr = os.RemoveAll(w.dir)
	})
	return w.closeErr
}

// FindWorkerd returns the workerd binary to use: $TAILLIGHT_WORKERD, the copy
// installed by deployments/local/install-workerd.sh, or workerd on $PATH. The
// error wraps ErrWorkerdNotFound and says how to install it.
func FindWorkerd() (string, error) {
	if p := os.Getenv(WorkerdEnv); p != "" {
		if err := devenv.Executable(p); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v; %s", ErrWorkerdNotFound, WorkerdEnv, p, err, WorkerdInstallHint)
		}
		return p, nil
	}
	var tried []string
	for _, dir := range workerdLocalDirs() {
		p := filepath.Join(dir, "node_modules", "@cloudflare", "workerd-"+workerdPlatform(), "bin", "workerd")
		if devenv.Executable(p) == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath("workerd"); err == nil {
		return p, nil
	}
	tried = append(tried, "workerd on $PATH")
	return "", fmt.Errorf("%w (looked at %s): %s", ErrWorkerdNotFound, strings.Join(tried, ", "), WorkerdInstallHint)
}

// workerdLocalDirs lists where install-workerd.sh installs: the checkout's
// deployments/local.
func workerdLocalDirs() []string {
	if root := devenv.CheckoutDir(); root != "" {
		return []string{filepath.Join(root, "deployments", "local")}
	}
	return nil
}

// workerdPlatform is the suffix of the npm package that carries the binary.
func workerdPlatform() string {
	arch := map[string]string{"amd64": "64", "arm64": "arm64"}[runtime.GOARCH]
	return runtime.GOOS + "-" + arch
}

var (
	workerdModuleName  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)
	workerdBindingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// writeWorkerdConfig writes the modules and config.capnp into dir and returns
// the config's path. Sources are embedded by file, so they need no escaping.
func writeWorkerdConfig(dir string, cfg WorkerdConfig) (string, error) {
	var b strings.Builder
	b.WriteString("using Workerd = import \"/workerd/workerd.capnp\";\n\n")
	b.WriteString("const config :Workerd.Config = (\n  services = [\n")
	b.WriteString("    (name = \"producer\", worker = .producer),\n")
	hasTail := len(cfg.Tail.Modules) > 0
	hasStream := len(cfg.StreamingTail.Modules) > 0
	if hasTail {
		b.WriteString("    (name = \"tail\", worker = .tail),\n")
	}
	if hasStream {
		b.WriteString("    (name = \"streamingTail\", worker = .streamingTail),\n")
	}
	// Loopback only: tests must not reach past this machine.
	b.WriteString("    (name = \"loopback\", network = (allow = [\"local\"])),\n  ],\n")
	b.WriteString("  sockets = [(name = \"http\", address = \"127.0.0.1:0\", http = (), service = \"producer\")],\n);\n\n")

	var tails, streams []string
	if hasTail {
		tails = []string{"tail"}
	}
	if hasStream {
		streams = []string{"streamingTail"}
	}
	if err := writeWorkerdWorker(&b, dir, "producer", cfg.Producer, tails, streams); err != nil {
		return "", err
	}
	if hasTail {
		if err := writeWorkerdWorker(&b, dir, "tail", cfg.Tail, nil, nil); err != nil {
			return "", err
		}
	}
	if hasStream {
		if err := writeWorkerdWorker(&b, dir, "streamingTail", cfg.StreamingTail, nil, nil); err != nil {
			return "", err
		}
	}
	p := filepath.Join(dir, "config.capnp")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return p, nil
}

func writeWorkerdWorker(b *strings.Builder, dir, name string, w WorkerdWorker, tails, streamingTails []string) error {
	if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
		return fmt.Errorf("write %s worker: %w", name, err)
	}
	fmt.Fprintf(b, "const %s :Workerd.Worker = (\n  modules = [\n", name)
	for _, m := range w.Modules {
		if !workerdModuleName.MatchString(m.Name) {
			return fmt.Errorf("%s worker: bad module name %q", name, m.Name)
		}
		if err := os.WriteFile(filepath.Join(dir, name, m.Name), []byte(m.Source), 0o600); err != nil {
			return fmt.Errorf("write %s worker module %s: %w", name, m.Name, err)
		}
		fmt.Fprintf(b, "    (name = %s, esModule = embed %s),\n", capnpString(m.Name), capnpString(name+"/"+m.Name))
	}
	b.WriteString("  ],\n")
	date := w.CompatibilityDate
	if date == "" {
		date = DefaultCompatibilityDate
	}
	fmt.Fprintf(b, "  compatibilityDate = %s,\n", capnpString(date))
	if len(w.Bindings) > 0 {
		names := make([]string, 0, len(w.Bindings))
		for k := range w.Bindings {
			if !workerdBindingName.MatchString(k) {
				return fmt.Errorf("%s worker: bad binding name %q", name, k)
			}
			names = append(names, k)
		}
		slices.Sort(names)
		b.WriteString("  bindings = [\n")
		for _, k := range names {
			fmt.Fprintf(b, "    (name = %s, text = %s),\n", capnpString(k), capnpString(w.Bindings[k]))
		}
		b.WriteString("  ],\n")
	}
	writeList := func(field string, xs []string) {
		if len(xs) == 0 {
			return
		}
		b.WriteString("  " + field + " = [")
		for i, x := range xs {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(capnpString(x))
		}
		b.WriteString("],\n")
	}
	writeList("compatibilityFlags", w.CompatibilityFlags)
	writeList("tails", tails)
	writeList("streamingTails", streamingTails)
	b.WriteString("  globalOutbound = \"loopback\",\n")
	if x := strings.TrimSpace(w.Extra); x != "" {
		b.WriteString("  " + strings.TrimSuffix(x, ",") + ",\n")
	}
	b.WriteString(");\n\n")
	return nil
}

// capnpString quotes s as a Cap'n Proto text literal (C-style escapes).
func capnpString(s string) string {
	return storage.QuoteWith(s, '"', &capnpEscapes)
}

// capnpEscapes writes control bytes as \xNN (a Cap'n Proto \0 would take
// the digits after it as octal), but \n, \r and \t by name.
var capnpEscapes = func() (e [256]string) {
	for c := range 0x20 {
		e[c] = fmt.Sprintf(`\x%02x`, c)
	}
	e[0x7f] = `\x7f`
	e['"'], e['\\'], e['\n'], e['\r'], e['\t'] = `\"`, `\\`, `\n`, `\r`, `\t`
	return e
}()

// workerdTailBuffer keeps the last max bytes written to it.
type workerdTailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *workerdTailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *workerdTailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// last returns at most the last n bytes, "(no output)" when there are none.
func (t *workerdTailBuffer) last(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.buf) == 0 {
		return "(no output)"
	}
	return string(t.buf[max(0, len(t.buf)-n):])
}

// CloudflareModule returns deployments/cloudflare/name of this checkout as a
// workerd module of that name, so tests run the very files that are
// deployed.
func CloudflareModule(tb testing.TB, name string) WorkerdModule {
	tb.Helper()
	root := devenv.CheckoutDir()
	if root == "" {
		tb.Fatalf("%s: not in a taillight checkout", name)
	}
	b, err := os.ReadFile(filepath.Join(root, "deployments", "cloudflare", name))
	if err != nil {
		tb.Fatal(err)
	}
	return WorkerdModule{Name: name, Source: string(b)}
}
