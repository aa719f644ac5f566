package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestListenAddr(t *testing.T) {
	f := func(v, def, want string) {
		t.Helper()
		if got := listenAddr(v, def); got != want {
			t.Errorf("listenAddr(%q, %q) = %q; want %q", v, def, got, want)
		}
	}
	f("0", "127.0.0.1:8090", "127.0.0.1:0")
	f("8091", "127.0.0.1:8090", "127.0.0.1:8091")
	f("0", ":8080", ":0")
	f(":0", "127.0.0.1:8090", ":0")
	f("10.0.0.1:80", "127.0.0.1:8090", "10.0.0.1:80")
	f("", ":8080", "")
}

// TestHelp: asked-for help goes to stdout; an unknown command is an error.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help", "ingest"}, {"ingest", "-h"}, {"dash", "--help"}} {
		name := args[0]
		if name == "help" {
			name = args[1]
		}
		var out, errb bytes.Buffer
		code := runMain(context.Background(), args, stdio{strings.NewReader(""), &out, &errb})
		if code != exitOK || !strings.Contains(out.String(), "Usage: taillight "+name) || errb.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %d bytes, stderr %q; want the usage on stdout", args, code, out.Len(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := runMain(context.Background(), []string{"help", "nosuch"}, stdio{strings.NewReader(""), &out, &errb}); code != exitUsage ||
		!strings.Contains(errb.String(), `unknown command "nosuch"`) {
		t.Errorf("help nosuch: exit %d, stderr %q; want %d naming the unknown command", code, errb.String(), exitUsage)
	}
	out.Reset()
	runMain(context.Background(), []string{"help", "dev"}, stdio{strings.NewReader(""), &out, io.Discard})
	if s := out.String(); strings.Contains(s, "default 127.0.0.1:9000") || !strings.Contains(s, "instead of starting a private one") {
		t.Errorf("help dev shows a client default for -clickhouse.addr, although dev starts its own server:\n%s", s)
	}
	out.Reset()
	runMain(context.Background(), []string{"help", "ingest"}, stdio{strings.NewReader(""), &out, io.Discard})
	for _, fl := range []string{"-listen.metrics", "-ingest.max-inflight-bytes", "-limits.max-name-bytes"} {
		if !strings.Contains(out.String(), fl+" ") {
			t.Errorf("help ingest lacks %s", fl)
		}
	}
	if strings.Contains(out.String(), "-ops.listen") {
		t.Errorf("help ingest lists the deprecated -ops.listen:\n%s", out.String())
	}
}

// TestDevPortsTaken: every taken port is reported at once, each with the
// flag that moves it, and a bare port 0 picks a free one.
func TestDevPortsTaken(t *testing.T) {
	var taken []net.Listener
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		taken = append(taken, ln)
	}
	port := func(ln net.Listener) string { return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) }
	args := []string{"dev", "-dir", t.TempDir(),
		"-listen.dash", taken[0].Addr().String(), "-listen.ingest", "0", "-listen.metrics", port(taken[1]),
		"-listen.kafka", "0", "-listen.clickhouse", port(taken[2]), "-listen.clickhouse-http", "0"}
	stderr := &syncBuffer{}
	code := runMain(context.Background(), args, stdio{strings.NewReader(""), io.Discard, stderr})
	for i, fl := range []string{"listen.dash", "listen.metrics", "listen.clickhouse"} {
		want := taken[i].Addr().String() + " is taken by another process; pick another address with -" + fl
		if code != exitError || !strings.Contains(stderr.String(), want) {
			t.Errorf("exit %d, stderr %q; want %d with %q", code, stderr, exitError, want)
		}
	}
	if strings.Contains(stderr.String(), "missing port") {
		t.Errorf("a bare 0 was refused: %s", stderr)
	}
}

// TestIngestOpsListenAlias: ingest's ops address is -listen.metrics, as in
// process and dev; the old -ops.listen still works, with a warning.
func TestIngestOpsListenAlias(t *testing.T) {
	k := newKafka(t, "ingest-cmd")
	_, stderr, _, _ := startIngest(t, k.ListenAddrs(), "tok", "-ops.listen", "127.0.0.1:0")
	if s := stderr.String(); !strings.Contains(s, "-ops.listen (TAILLIGHT_OPS_LISTEN) is deprecated: use -listen.metrics") || !strings.Contains(s, `msg="ops listening"`) {
		t.Errorf("-ops.listen: no deprecation warning or no ops listener:\n%s", s)
	}
	_, stderr, _, _ = startIngest(t, k.ListenAddrs(), "tok", "-listen.metrics", "127.0.0.1:0")
	if s := stderr.String(); strings.Contains(s, "deprecated") || !strings.Contains(s, `msg="ops listening"`) {
		t.Errorf("-listen.metrics:\n%s", s)
	}
}
