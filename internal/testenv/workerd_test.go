package testenv

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCapnpString(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := capnpString(in); got != want {
			t.Fatalf("capnpString(%q) = %s; want %s", in, got, want)
		}
	}
	f("", `""`)
	f("http://127.0.0.1:1/v1/traces", `"http://127.0.0.1:1/v1/traces"`)
	f(`a"b\c`, `"a\"b\\c"`)
	f("l1\nl2\t\r", `"l1\nl2\t\r"`)
	f("\x00\x1f\x7f", `"\x00\x1f\x7f"`)
	f("héllo", `"héllo"`)
}

func TestWriteWorkerdConfigRejectsBadNames(t *testing.T) {
	f := func(w WorkerdWorker, want string) {
		t.Helper()
		_, err := writeWorkerdConfig(t.TempDir(), WorkerdConfig{Producer: w})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("writeWorkerdConfig: err = %v; want it to mention %q", err, want)
		}
	}
	f(WorkerdWorker{Modules: []WorkerdModule{{Name: "../evil.js"}}}, "bad module name")
	f(WorkerdWorker{Modules: []WorkerdModule{{Name: "a.js"}}, Bindings: map[string]string{"A-B": ""}}, "bad binding name")
}

func TestFindWorkerdMissing(t *testing.T) {
	t.Setenv(WorkerdEnv, filepath.Join(t.TempDir(), "no-such-workerd"))
	_, err := StartWorkerd(t.Context(), WorkerdConfig{Producer: WorkerdWorker{Modules: []WorkerdModule{{Name: "p.js"}}}})
	if !errors.Is(err, ErrWorkerdNotFound) {
		t.Fatalf("err = %v; want ErrWorkerdNotFound", err)
	}
	if !strings.Contains(err.Error(), "install-workerd.sh") {
		t.Fatalf("err = %v; want it to say how to install workerd", err)
	}
}

// fakeWorkerd writes a shell script that stands in for workerd.
func fakeWorkerd(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "workerd")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

var producerOK = WorkerdWorker{Modules: []WorkerdModule{{Name: "producer.js", Source: `export default { fetch() { return new Response("ok"); } };`}}}

func TestStartWorkerdPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = StartWorkerd(t.Context(), WorkerdConfig{
		Binary:   fakeWorkerd(t, "exit 0\n"),
		Addr:     ln.Addr().String(),
		Producer: producerOK,
	})
	if err == nil || !strings.Contains(err.Error(), "port taken") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("err = %v; want a port-taken error naming %s", err, ln.Addr())
	}
}

func TestStartWorkerdExitsEarly(t *testing.T) {
	_, err := StartWorkerd(t.Context(), WorkerdConfig{
		Binary:   fakeWorkerd(t, "echo 'config.capnp:3: parse error' >&2\nexit 3\n"),
		Producer: producerOK,
	})
	if err == nil || !strings.Contains(err.Error(), "exited before listening") || !strings.Contains(err.Error(), "parse error") {
		t.Fatalf("err = %v; want an early-exit error with workerd's output", err)
	}
}

func TestStartWorkerdNeverReadyKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// A child that would outlive its parent unless the whole group is killed.
	bin := fakeWorkerd(t, "sleep 300 &\necho $! > "+pidFile+"\necho booting slowly >&2\nwait\n")
	start := time.Now()
	_, err := StartWorkerd(t.Context(), WorkerdConfig{Binary: bin, Producer: producerOK, StartTimeout: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "not listening after 500ms") || !strings.Contains(err.Error(), "booting slowly") {
		t.Fatalf("err = %v; want a not-ready error with workerd's output", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("start took %s; want it bounded by StartTimeout plus the stop grace", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)
}

func TestStartWorkerdContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := StartWorkerd(ctx, WorkerdConfig{Binary: fakeWorkerd(t, "exec sleep 300\n"), Producer: producerOK})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
}

// waitGone polls until pid no longer runs (absent, or a zombie awaiting its reaper).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	if !Poll(10*time.Second, 20*time.Millisecond, func() bool { return ProcGone(pid) }) {
		t.Fatalf("process %d still runs after Close", pid)
	}
}

// requireWorkerd returns the workerd binary, or skips (fails with TAILLIGHT_E2E=1).
func requireWorkerd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping workerd test in -short mode")
	}
	bin, err := FindWorkerd()
	if err != nil {
		if E2E() {
			t.Fatalf("TAILLIGHT_E2E=1 but %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	return bin
}

func TestStartWorkerdServesAndTails(t *testing.T) {
	bin := requireWorkerd(t)
	got := make(chan string, 16)
	ingest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case got <- r.Header.Get("Authorization") + " " + string(b):
		default: // never block the server's Close
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer ingest.Close()

	wd, err := StartWorkerd(t.Context(), WorkerdConfig{
		Binary: bin,
		Producer: WorkerdWorker{Modules: []WorkerdModule{{Name: "producer.js", Source: `
export default { async fetch(req) { return new Response("hello " + new URL(req.url).pathname, { status: 201 }); } };`}}},
		Tail: WorkerdWorker{
			Modules: []WorkerdModule{{Name: "tail.js", Source: `
export default { async tail(events, env) {
  await fetch(env.URL, { method: "POST", body: JSON.stringify(events), headers: { authorization: env.TOKEN } });
} };`}},
			Bindings: map[string]string{"URL": ingest.URL, "TOKEN": `t"o\ken`},
		},
		StreamingTail: WorkerdWorker{
			Modules: []WorkerdModule{{Name: "stream.js", Source: `
const post = (env, ev) => fetch(env.URL, { method: "POST", body: JSON.stringify(ev), headers: { authorization: "stream" } });
export default { async tailStream(onset, env) {
  await post(env, onset);
  return async (ev) => { await post(env, ev); };
} };`}},
			Bindings: map[string]string{"URL": ingest.URL},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	pid, dir := wd.cmd.Process.Pid, wd.dir
	defer wd.Close()

	res, err := http.Get(wd.URL() + "/x/y")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 || string(body) != "hello /x/y" {
		t.Fatalf("GET = %d %q; want 201 %q", res.StatusCode, body, "hello /x/y")
	}
	// One TraceItem array from the Tail Worker, and the streaming Tail
	// Worker's onset ... outcome events, in any interleaving.
	var tailed, onset, outcome bool
	timeout := time.After(30 * time.Second)
	for !tailed || !onset || !outcome {
		select {
		case s := <-got:
			switch {
			case strings.HasPrefix(s, `t"o\ken [{`):
				if !strings.Contains(s, `"url":"`+wd.URL()+`/x/y"`) || !strings.Contains(s, `"status":201`) {
					t.Fatalf("tail POST = %s; want a TraceItem for /x/y", s)
				}
				tailed = true
			case strings.HasPrefix(s, "stream {") && strings.Contains(s, `"type":"onset"`):
				if !strings.Contains(s, `"url":"`+wd.URL()+`/x/y"`) {
					t.Fatalf("streaming onset = %s; want the request URL", s)
				}
				onset = true
			case strings.HasPrefix(s, "stream {") && strings.Contains(s, `"type":"outcome"`):
				outcome = true
			case strings.HasPrefix(s, "stream {"):
			default:
				t.Fatalf("unexpected POST %s", s)
			}
		case <-timeout:
			t.Fatalf("after 30s: tail %v, streaming onset %v, outcome %v; workerd output:\n%s", tailed, onset, outcome, wd.Output())
		}
	}

	if err := wd.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wd.Exited():
	default:
		t.Fatal("Close returned before workerd exited")
	}
	waitGone(t, pid)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("config dir %s still there after Close (err=%v)", dir, err)
	}
	if err := wd.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
