package devenv_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	. "github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
)

// requireClickHouse skips in -short mode, and when no server binary is
// installed (fails instead under TAILLIGHT_E2E=1).
func requireClickHouse(t *testing.T) ClickHouseConfig {
	t.Helper()
	testenv.SkipShort(t, "starts a real ClickHouse server")
	if _, err := FindClickHouse(); err != nil {
		testenv.NoClickHouse(t, err)
	}
	return ClickHouseConfig{StartTimeout: 60 * time.Second}
}

func startClickHouse(t *testing.T, cfg ClickHouseConfig) *ClickHouse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	ch, err := StartClickHouse(ctx, cfg)
	if err != nil {
		t.Fatalf("StartClickHouse: %v", err)
	}
	t.Logf("clickhouse %s (http %s) ready in %s", ch.Addr(), ch.HTTPAddr(), time.Since(t0))
	t.Cleanup(func() {
		if err := ch.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ch
}

func openClickHouse(t *testing.T, addr, user string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Protocol:    clickhouse.Native, // 18.16 speaks clickhouse-go's native protocol only
		Auth:        clickhouse.Auth{Database: "default", Username: user},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("clickhouse.Open %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// insertAndCount creates table name, inserts n rows in one batch and returns
// count() and sum(n) as the server reports them.
func insertAndCount(t *testing.T, conn driver.Conn, name string, n int) (uint64, uint64) {
	t.Helper()
	ctx := t.Context()
	if err := conn.Exec(ctx, "CREATE TABLE "+name+" (n UInt64, s String) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	// 18.16 needs the explicit column list.
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+name+" (n, s)")
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	for i := range n {
		if err := batch.Append(uint64(i+1), "row "+strconv.Itoa(i)); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send batch: %v", err)
	}
	return countRows(t, conn, name)
}

func countRows(t *testing.T, conn driver.Conn, name string) (count, sum uint64) {
	t.Helper()
	if err := conn.QueryRow(t.Context(), "SELECT count(), sum(n) FROM "+name).Scan(&count, &sum); err != nil {
		t.Fatalf("count %s: %v", name, err)
	}
	return count, sum
}

func TestClickHouseSideBySide(t *testing.T) {
	cfg := requireClickHouse(t)
	var servers [2]*ClickHouse
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range servers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			servers[i], errs[i] = StartClickHouse(ctx, cfg)
		})
	}
	wg.Wait()
	for i, s := range servers {
		if s != nil {
			t.Cleanup(func() { _ = s.Close() })
		}
		if errs[i] != nil {
			t.Fatalf("server %d: %v", i, errs[i])
		}
	}
	if servers[0].Addr() == servers[1].Addr() || servers[0].Dir() == servers[1].Dir() {
		t.Fatalf("servers share an address or dir: %s %s, %s %s", servers[0].Addr(), servers[1].Addr(), servers[0].Dir(), servers[1].Dir())
	}
	const n = 5000
	for i, s := range servers {
		conn := openClickHouse(t, s.Addr(), "default")
		var version string
		if err := conn.QueryRow(t.Context(), "SELECT version()").Scan(&version); err != nil {
			t.Fatalf("server %d: version(): %v", i, err)
		}
		name := fmt.Sprintf("side_%d", i)
		count, sum := insertAndCount(t, conn, name, n)
		if count != n || sum != n*(n+1)/2 {
			t.Fatalf("server %d (%s): count %d sum %d; want %d and %d", i, version, count, sum, n, n*(n+1)/2)
		}
		t.Logf("server %d: ClickHouse %s at %s, %d rows", i, version, s.Addr(), count)
	}
	// Each has only its own table: nothing is shared.
	conn := openClickHouse(t, servers[1].Addr(), "default")
	var tables uint64
	if err := conn.QueryRow(t.Context(), "SELECT count() FROM system.tables WHERE database = 'default' AND name = 'side_0'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("server 1 sees server 0's table")
	}
}

func TestClickHouseStopStartKillKeepData(t *testing.T) {
	ch := startClickHouse(t, requireClickHouse(t))
	addr, httpAddr := ch.Addr(), ch.HTTPAddr()
	conn := openClickHouse(t, addr, "default")
	const n = 1000
	if c, _ := insertAndCount(t, conn, "kept", n); c != n {
		t.Fatalf("count %d; want %d", c, n)
	}

	pid := ch.PID()
	t0 := time.Now()
	if err := ch.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("graceful stop took %s", time.Since(t0))
	assertClickHouseGone(t, pid, addr)
	if ch.PID() != 0 {
		t.Fatalf("PID after Stop = %d; want 0", ch.PID())
	}
	if err := ch.Stop(t.Context()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	t0 = time.Now()
	if err := ch.Start(t.Context()); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	t.Logf("restart took %s", time.Since(t0))
	if ch.Addr() != addr || ch.HTTPAddr() != httpAddr {
		t.Fatalf("restarted on %s/%s; want the same %s/%s", ch.Addr(), ch.HTTPAddr(), addr, httpAddr)
	}
	if err := ch.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("Start while running: err = %v; want 'already running'", err)
	}
	conn = openClickHouse(t, addr, "default")
	if c, s := countRows(t, conn, "kept"); c != n || s != n*(n+1)/2 {
		t.Fatalf("after restart: count %d sum %d; want %d and %d", c, s, n, n*(n+1)/2)
	}

	pid = ch.PID()
	if err := ch.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	assertClickHouseGone(t, pid, addr)
	if err := ch.Start(t.Context()); err != nil {
		t.Fatalf("Start after Kill: %v", err)
	}
	conn = openClickHouse(t, addr, "default")
	if c, _ := countRows(t, conn, "kept"); c != n {
		t.Fatalf("after kill and restart: count %d; want %d", c, n)
	}

	// Killed from outside (a crash): PID notices, Start starts it again.
	pid = ch.PID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	assertClickHouseGone(t, pid, addr)
	if !testenv.Poll(10*time.Second, 10*time.Millisecond, func() bool { return ch.PID() == 0 }) {
		t.Fatalf("PID = %d after the process died; want 0", ch.PID())
	}
	if err := ch.Start(t.Context()); err != nil {
		t.Fatalf("Start after a crash: %v", err)
	}
	if c, _ := countRows(t, openClickHouse(t, addr, "default"), "kept"); c != n {
		t.Fatalf("after crash and restart: count %d; want %d", c, n)
	}
}

func TestClickHouseCloseLeavesNothing(t *testing.T) {
	cfg := requireClickHouse(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	ch, err := StartClickHouse(ctx, cfg)
	if err != nil {
		t.Fatalf("StartClickHouse: %v", err)
	}
	pid, dir, addr := ch.PID(), ch.Dir(), ch.Addr()
	if pid == 0 {
		t.Fatal("PID = 0 for a running server")
	}
	if err := ch.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertClickHouseGone(t, pid, addr)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dir %s after Close: %v; want it removed", dir, err)
	}
	if err := ch.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := ch.Start(t.Context()); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

func TestClickHouseKeepsGivenDir(t *testing.T) {
	cfg := requireClickHouse(t)
	cfg.Dir = filepath.Join(t.TempDir(), "ch")
	ch := startClickHouse(t, cfg)
	conn := openClickHouse(t, ch.Addr(), "default")
	insertAndCount(t, conn, "in_given_dir", 10)
	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	// A new server on the same directory (and new ports) has the data.
	ch2 := startClickHouse(t, cfg)
	if c, _ := countRows(t, openClickHouse(t, ch2.Addr(), "default"), "in_given_dir"); c != 10 {
		t.Fatalf("count %d; want 10", c)
	}
}

func TestClickHouseReadonlyUser(t *testing.T) {
	ch := startClickHouse(t, requireClickHouse(t))
	insertAndCount(t, openClickHouse(t, ch.Addr(), "default"), "ro", 3)
	ro := openClickHouse(t, ch.Addr(), "readonly")
	if c, _ := countRows(t, ro, "ro"); c != 3 {
		t.Fatalf("readonly count %d; want 3", c)
	}
	for _, q := range []string{
		"CREATE TABLE ro2 (n UInt64) ENGINE = Memory",
		"INSERT INTO ro (n, s) VALUES (9, 'x')",
		"DROP TABLE ro",
	} {
		if err := ro.Exec(t.Context(), q); err == nil {
			t.Errorf("readonly user ran %q", q)
		}
	}
}

func TestClickHousePortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	// Detected before starting: the binary is never run (a fake would do).
	_, err = StartClickHouse(t.Context(), ClickHouseConfig{Binary: fakeClickHouse(t, "exit 3\n"), HTTPPort: port})
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("err = %v; want ErrPortInUse naming 127.0.0.1:%d", err, port)
	}
	t.Log(err)

	// And read from the real server's log when the port is taken after the
	// check (here: no check at all).
	cfg := requireClickHouse(t)
	cfg.TCPPort = port
	cfg = SkipPortCheck(cfg)
	t0 := time.Now()
	_, err = StartClickHouse(t.Context(), cfg)
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("err = %v; want ErrPortInUse quoting the server's 'Address already in use'", err)
	}
	t.Logf("after %s: %v", time.Since(t0), err)
}

// fakeClickHouse writes a shell script that stands in for clickhouse-server;
// $cfgdir is the directory of the config file it is given.
func fakeClickHouse(t *testing.T, script string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "clickhouse-server")
	body := "#!/bin/sh\ncfgdir=$(dirname \"${1#--config-file=}\")\n" + script
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClickHouseFakeExitsEarly(t *testing.T) {
	// The log-reading path, without a real server: the fake writes what 18.16
	// writes when its port is taken, and exits as 18.16 does (70).
	bin := fakeClickHouse(t, `echo "2026.01.01 00:00:00.000000 [ 1 ] {} <Error> Application: Net Exception: Address already in use: 127.0.0.1:9" >> "$cfgdir/log/server.err.log"
exit 70
`)
	_, err := StartClickHouse(t.Context(), SkipPortCheck(ClickHouseConfig{Binary: bin, TCPPort: 1, HTTPPort: 2}))
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "127.0.0.1:9") || !strings.Contains(err.Error(), "exit status 70") {
		t.Fatalf("err = %v; want ErrPortInUse naming 127.0.0.1:9 and the exit status", err)
	}

	bin = fakeClickHouse(t, `echo "DB::Exception: Cannot lock file status" >> "$cfgdir/log/server.err.log"; exit 76`+"\n")
	_, err = StartClickHouse(t.Context(), ClickHouseConfig{Binary: bin})
	if err == nil || errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "Cannot lock file status") {
		t.Fatalf("err = %v; want the server's own error line", err)
	}
}

func TestClickHouseFakeNeverReadyKillsGroup(t *testing.T) {
	// The fake starts a child in its group and never answers.
	bin := fakeClickHouse(t, `sleep 300 &
echo $! > "$cfgdir/child.pid"
echo "starting forever" >> "$cfgdir/log/server.err.log"
exec sleep 300
`)
	dir := t.TempDir()
	t0 := time.Now()
	_, err := StartClickHouse(t.Context(), ClickHouseConfig{Binary: bin, Dir: dir, StartTimeout: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "StartTimeout") || !strings.Contains(err.Error(), "starting forever") {
		t.Fatalf("err = %v; want a StartTimeout error with the log tail", err)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Fatalf("gave up after %s; want about StartTimeout", took)
	}
	b, rerr := os.ReadFile(filepath.Join(dir, "child.pid"))
	if rerr != nil {
		t.Fatalf("fake did not record its child: %v", rerr)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	assertClickHouseGone(t, child, "")
	if _, serr := os.Stat(dir); serr != nil {
		t.Fatalf("a given Dir must be kept: %v", serr)
	}
}

func TestClickHouseContextCanceled(t *testing.T) {
	bin := fakeClickHouse(t, "exec sleep 300\n")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := StartClickHouse(ctx, ClickHouseConfig{Binary: bin})
	if !errors.Is(err, context.DeadlineExceeded) && (err == nil || !strings.Contains(err.Error(), "deadline exceeded")) {
		t.Fatalf("err = %v; want the context's error", err)
	}
}

// TestClickHouseInstallerFindsServer runs install-clickhouse.sh with the
// server present: it must find the binary FindClickHouse finds and install
// nothing.
func TestClickHouseInstallerFindsServer(t *testing.T) {
	bin, err := FindClickHouse()
	if err != nil {
		t.Skipf("skipping: %v (the installer would run apt-get)", err)
	}
	cmd := exec.CommandContext(t.Context(), "bash", filepath.Join("..", "..", "deployments", "local", "install-clickhouse.sh"))
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "already installed: "+bin) {
		t.Fatalf("install-clickhouse.sh: %v\n%s", err, out)
	}
}

func TestClickHouseBinaryMissing(t *testing.T) {
	_, err := StartClickHouse(t.Context(), ClickHouseConfig{Binary: filepath.Join(t.TempDir(), "no-such-clickhouse")})
	if !errors.Is(err, ErrClickHouseNotFound) || !strings.Contains(err.Error(), "install.sh clickhouse") {
		t.Fatalf("err = %v; want ErrClickHouseNotFound saying how to install", err)
	}
}

func TestClickHouseBadPorts(t *testing.T) {
	f := func(tcp, http int) {
		t.Helper()
		if _, err := StartClickHouse(t.Context(), ClickHouseConfig{Binary: fakeClickHouse(t, "exit 1\n"), TCPPort: tcp, HTTPPort: http}); err == nil {
			t.Fatalf("ports %d/%d accepted", tcp, http)
		}
	}
	f(-1, 0)
	f(0, 70000)
	f(4000, 4000)
}

func TestWriteClickHouseConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a&b") // must be escaped
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteClickHouseConfig(dir, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		XMLName     xml.Name  `xml:"yandex"`
		ListenHost  []string  `xml:"listen_host"`
		TCPPort     int       `xml:"tcp_port"`
		HTTPPort    int       `xml:"http_port"`
		Path        string    `xml:"path"`
		TmpPath     string    `xml:"tmp_path"`
		UserFiles   string    `xml:"user_files_path"`
		FormatPath  string    `xml:"format_schema_path"`
		Log         string    `xml:"logger>log"`
		ErrLog      string    `xml:"logger>errorlog"`
		QueryLog    *struct{} `xml:"query_log"`
		Interserver int       `xml:"interserver_http_port"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("config.xml: %v", err)
	}
	if len(cfg.ListenHost) != 1 || cfg.ListenHost[0] != "127.0.0.1" || cfg.TCPPort != 1234 || cfg.HTTPPort != 5678 {
		t.Fatalf("listen %v tcp %d http %d; want only 127.0.0.1, 1234, 5678", cfg.ListenHost, cfg.TCPPort, cfg.HTTPPort)
	}
	for _, p := range []string{cfg.Path, cfg.TmpPath, cfg.UserFiles, cfg.FormatPath, cfg.Log, cfg.ErrLog} {
		if !strings.HasPrefix(p, dir+"/") {
			t.Errorf("path %q is outside %s", p, dir)
		}
	}
	if cfg.QueryLog != nil || cfg.Interserver != 0 {
		t.Errorf("config has a query_log or an interserver port")
	}
	var users struct {
		Users struct {
			Default struct {
				Profile string   `xml:"profile"`
				IPs     []string `xml:"networks>ip"`
			} `xml:"default"`
			Readonly struct {
				Profile string   `xml:"profile"`
				IPs     []string `xml:"networks>ip"`
			} `xml:"readonly"`
		} `xml:"users"`
		ReadonlyProfile struct {
			Readonly int `xml:"readonly"`
		} `xml:"profiles>readonly"`
	}
	b, err = os.ReadFile(filepath.Join(dir, "users.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &users); err != nil {
		t.Fatalf("users.xml: %v", err)
	}
	if users.Users.Readonly.Profile != "readonly" || users.ReadonlyProfile.Readonly != 1 {
		t.Errorf("readonly user: profile %q readonly=%d", users.Users.Readonly.Profile, users.ReadonlyProfile.Readonly)
	}
	for _, ip := range append(users.Users.Default.IPs, users.Users.Readonly.IPs...) {
		if ip != "127.0.0.1" && ip != "::1" {
			t.Errorf("user network %s is not loopback", ip)
		}
	}
}

func TestClickHouseAddrInUse(t *testing.T) {
	f := func(line, want string, port string) {
		t.Helper()
		m := ClickHouseAddrInUse.FindStringSubmatch(line)
		if want == "" {
			if m != nil {
				t.Fatalf("%q matched %q", line, m[0])
			}
			return
		}
		if m == nil || m[0] != want || m[1] != port {
			t.Fatalf("%q: match %q; want %q with port %q", line, m, want, port)
		}
	}
	f("2026.11.22 03:03:20.522617 [ 1 ] {} <Error> Application: Net Exception: Address already in use: 127.0.0.1:48345",
		"Address already in use: 127.0.0.1:48345", "48345")
	f("Listen [::1]:9000 failed: Address already in use: [::1]:9000", "Address already in use: [::1]:9000", "9000")
	f("Poco::Exception. Code: 1000, e.code() = 98, Net Exception: Address already in use (version 24.8)", "Address already in use", "")
	f("Cannot lock file status", "", "")
}

func TestClickHouseTail(t *testing.T) {
	f := func(in string, n int, want string) {
		t.Helper()
		if got := ClickHouseTail(in, n); got != want {
			t.Fatalf("ClickHouseTail(%q, %d) = %q; want %q", in, n, got, want)
		}
	}
	f("", 3, "")
	f("a\nb\n\nc\n", 2, "b\nc")
	f("a\nb\n", 5, "a\nb")
}

// assertClickHouseGone waits until pid has exited and, when addr is set,
// nothing accepts connections there. A zombie counts as exited (PID 1 in a
// container may never reap an orphan), but a multi-threaded process's leader
// shows as a zombie while its other threads still run and hold the sockets,
// hence the wait for addr too.
func assertClickHouseGone(t *testing.T, pid int, addr string) {
	t.Helper()
	alive, accepting := true, false
	gone := testenv.Poll(10*time.Second, 20*time.Millisecond, func() bool {
		alive = syscall.Kill(pid, 0) == nil && !testenv.ProcGone(pid)
		accepting = false
		if !alive && addr != "" {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				accepting = true
			}
		}
		return !alive && !accepting
	})
	if !gone {
		if alive {
			t.Fatalf("process %d still running", pid)
		}
		t.Fatalf("process %d exited but something still accepts connections on %s", pid, addr)
	}
}

// TestClickHouseShWritesSameConfig keeps clickhouse.sh (for people) and
// writeClickHouseConfig (for tests) writing the same server config.
func TestClickHouseShWritesSameConfig(t *testing.T) {
	dir := t.TempDir()
	if err := WriteClickHouseConfig(dir, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for _, f := range []string{"config.xml", "users.xml"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want[f] = b
		_ = os.Remove(filepath.Join(dir, f))
	}
	if out, err := exec.Command("bash", filepath.Join("..", "..", "deployments", "local", "clickhouse.sh"), "config", dir, "1234", "5678").CombinedOutput(); err != nil {
		t.Fatalf("clickhouse.sh config: %v\n%s", err, out)
	}
	for f, w := range want {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w) {
			t.Errorf("clickhouse.sh wrote a different %s than clickhouse.go:\n--- sh\n%s\n--- go\n%s", f, got, w)
		}
	}
}
