package devenv

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// needKafka skips (or, with TAILLIGHT_E2E=1, fails) a test that needs java and
// the broker's jars when they are missing.
func needKafka(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real Kafka brokers; skipped under -short")
	}
	if err := KafkaInstalled(""); err != nil {
		if os.Getenv("TAILLIGHT_E2E") == "1" {
			t.Fatalf("TAILLIGHT_E2E=1 and Kafka cannot be started: %v", err)
		}
		t.Skipf("Kafka cannot be started (set TAILLIGHT_E2E=1 to fail instead): %v", err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestKafkaConfigValidate(t *testing.T) {
	f := func(cfg KafkaConfig, wantErr bool) {
		t.Helper()
		if err := cfg.Validate(); (err != nil) != wantErr {
			t.Fatalf("Validate(%+v) = %v; want error %v", cfg, err, wantErr)
		}
	}
	f(KafkaConfig{}, false)
	f(KafkaConfig{Brokers: 1}, false)
	f(KafkaConfig{Brokers: 3}, false)
	f(KafkaConfig{Brokers: 2}, true)
	f(KafkaConfig{Brokers: -1}, true)
	f(KafkaConfig{StartTimeout: -time.Second}, true)
}

// TestKafkaVersionFromPom keeps KafkaVersion equal to the release
// install-kafka.sh resolves.
func TestKafkaVersionFromPom(t *testing.T) {
	pom, err := os.ReadFile(filepath.Join("..", "..", "deployments", "local", "kafka", "pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`<kafka.version>([^<]+)</kafka.version>`).FindSubmatch(pom)
	if m == nil || string(m[1]) != KafkaVersion {
		t.Fatalf("deployments/local/kafka/pom.xml pins %s; KafkaVersion = %q: update one to the other", m, KafkaVersion)
	}
}

func TestStartKafkaMissingJars(t *testing.T) {
	dir := t.TempDir()
	_, err := StartKafka(context.Background(), KafkaConfig{JarsDir: dir, Dir: dir})
	if !errors.Is(err, ErrKafkaNotInstalled) || !strings.Contains(err.Error(), "install-kafka.sh") {
		t.Fatalf("StartKafka with empty jars dir: err = %v; want ErrKafkaNotInstalled naming install-kafka.sh", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("StartKafka left %d entries in %s after failing", len(entries), dir)
	}
}

func TestStartKafkaMissingJava(t *testing.T) {
	_, err := StartKafka(context.Background(), KafkaConfig{Java: "/nonexistent/java", Dir: t.TempDir()})
	if !errors.Is(err, ErrKafkaNotInstalled) || !strings.Contains(err.Error(), "Java 17") {
		t.Fatalf("StartKafka with missing java: err = %v; want ErrKafkaNotInstalled naming Java 17", err)
	}
}

// TestStartKafkaBadProperty starts a broker with a property it rejects: the
// error must name the node (or the format step) and carry the JVM's complaint.
func TestStartKafkaBadProperty(t *testing.T) {
	needKafka(t)
	dir := t.TempDir()
	_, err := StartKafka(context.Background(), KafkaConfig{
		Dir: dir, Log: testLogger(t),
		ExtraProps: map[string]string{"num.io.threads": "not-a-number"},
	})
	if err == nil || !strings.Contains(err.Error(), "node 1") || !strings.Contains(err.Error(), "not-a-number") {
		t.Fatalf("StartKafka with a bad property: err = %v; want a node 1 error quoting the bad value", err)
	}
	assertEmptyDir(t, dir)
}

// TestStartKafkaNeverReady gives the brokers less time than a JVM needs to
// start: StartKafka must give up after StartTimeout, say so with the log's
// tail, and leave no process or directory behind.
func TestStartKafkaNeverReady(t *testing.T) {
	needKafka(t)
	dir := t.TempDir()
	t0 := time.Now()
	k, err := StartKafka(context.Background(), KafkaConfig{Dir: dir, Log: testLogger(t), StartTimeout: 300 * time.Millisecond})
	took := time.Since(t0)
	if err == nil {
		k.Close()
		t.Fatal("StartKafka with a 300ms start timeout succeeded; want a not-ready error")
	}
	if !strings.Contains(err.Error(), "not ready after") || !strings.Contains(err.Error(), "deadline exceeded") || !strings.Contains(err.Error(), "last lines of server.log") {
		t.Fatalf("StartKafka: err = %v; want a not-ready error with the log tail", err)
	}
	if took > 60*time.Second {
		t.Fatalf("StartKafka gave up after %s; want StartTimeout plus the format step", took)
	}
	assertEmptyDir(t, dir)
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("StartKafka left %d entries in %s after failing", len(entries), dir)
	}
	assertNoProcessUnder(t, dir)
}

// assertNoProcessUnder fails if any process's command line names dir (a
// broker JVM's does: its server.properties and log4j config live there).
func assertNoProcessUnder(t *testing.T, dir string) {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil || len(procs) == 0 {
		return // no /proc: nothing to check with
	}
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), dir) {
			t.Fatalf("process %s still runs under %s: %q", filepath.Dir(p), dir, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

func TestKafkaSingleBroker(t *testing.T) {
	needKafka(t)
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Now()
	k, err := StartKafka(ctx, KafkaConfig{Dir: dir, Log: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one broker ready in %s", time.Since(t0).Round(time.Millisecond))
	defer k.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()...), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("smoke"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(v string) {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(pctx, &kgo.Record{Topic: "smoke", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %q: %v", v, err)
		}
	}
	consume := func(want string) {
		t.Helper()
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for {
			fs := cl.PollFetches(fctx)
			if err := fctx.Err(); err != nil {
				t.Fatalf("waiting for %q: %v", want, err)
			}
			var got []string
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
			for _, g := range got {
				if g == want {
					return
				}
			}
		}
	}
	produce("one")
	consume("one")

	// Graceful stop and restart keep the data and the port.
	if err := k.StopBroker(ctx, 0, false); err != nil {
		t.Fatal(err)
	}
	if k.Running(0) {
		t.Fatal("broker 0 still running after StopBroker")
	}
	if err := k.StartBroker(ctx, 0); err != nil {
		t.Fatal(err)
	}
	produce("two")
	consume("two")
	adm := kadm.NewClient(cl)
	offs, err := adm.ListEndOffsets(ctx, "smoke")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	offs.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != 2 {
		t.Fatalf("topic smoke has %d records after a restart; want 2 (data kept)", total)
	}

	// A port taken while the broker is down gives ErrKafkaPortTaken, not a hang.
	if err := k.StopBroker(ctx, 0, true); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(k.Brokers()[0])
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("occupy the stopped broker's port: %v", err)
	}
	err = k.StartBroker(ctx, 0)
	l.Close()
	if !errors.Is(err, ErrKafkaPortTaken) || !strings.Contains(err.Error(), port) {
		t.Fatalf("StartBroker on a taken port: err = %v; want ErrKafkaPortTaken naming %s", err, port)
	}

	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(k.Dir()); !os.IsNotExist(err) {
		t.Fatalf("Close left %s behind (stat err %v)", k.Dir(), err)
	}
	assertNoBroker(t, k)
	assertNoProcessUnder(t, k.Dir())
}

// assertNoBroker checks that nothing listens on the cluster's ports any more.
func assertNoBroker(t *testing.T, k *Kafka) {
	t.Helper()
	for _, n := range k.nodes {
		for _, p := range []int{n.port, n.ctrlPort} {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p), time.Second)
			if err == nil {
				c.Close()
				t.Fatalf("port %d still answers after Close", p)
			}
		}
	}
}

func TestStartKfake(t *testing.T) {
	c, err := StartKfake(3)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := len(c.ListenAddrs()); n != 3 {
		t.Fatalf("ListenAddrs has %d brokers; want 3", n)
	}
	for _, a := range c.ListenAddrs() {
		if host, _, _ := net.SplitHostPort(a); host != "127.0.0.1" {
			t.Fatalf("kfake listens on %s; want loopback", a)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce to an auto-created topic: %v", err)
	}
	td, err := kadm.NewClient(cl).ListTopics(ctx, "auto")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["auto"].Partitions); n != 3 {
		t.Fatalf("auto-created topic has %d partitions; want 3", n)
	}
}

// TestStartKafkaPortTaken hands the broker a listener port someone holds:
// the JVM's bind failure must come back as ErrKafkaPortTaken naming the node
// (after the retries, which get the same port here), with nothing left running.
func TestStartKafkaPortTaken(t *testing.T) {
	needKafka(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	pick := kafkaPickPorts
	kafkaPickPorts = func(n int) ([]int, error) {
		ports, err := pick(n)
		if err == nil {
			ports[0] = taken // node 1's broker listener
		}
		return ports, err
	}
	defer func() { kafkaPickPorts = pick }()
	dir := t.TempDir()
	_, err = StartKafka(context.Background(), KafkaConfig{Dir: dir, Log: testLogger(t), StartTimeout: time.Minute})
	if !errors.Is(err, ErrKafkaPortTaken) || !strings.Contains(err.Error(), "node 1") || !strings.Contains(err.Error(), strconv.Itoa(taken)) {
		t.Fatalf("StartKafka on a taken port: err = %v; want ErrKafkaPortTaken naming node 1 and port %d", err, taken)
	}
	t.Logf("error as reported:\n%v", err)
	assertEmptyDir(t, dir)
}
