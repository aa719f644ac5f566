// Package integration holds taillight's end-to-end tests and the harness that
// gives them real servers: Start(t) returns Kafka brokers and a ClickHouse
// address, shared by every test of the package (started on first use, torn
// down by Main from TestMain).
//
// The servers come from one of three backends, chosen by TAILLIGHT_BACKEND:
//
//   - local: Apache Kafka (one KRaft broker) and a private clickhouse-server,
//     started as child processes by deployments/devenv. Needs java 17+, the
//     jars from deployments/local/install-kafka.sh and the clickhouse-server
//     binary (deployments/local/install.sh clickhouse).
//   - containers: testcontainers-go's Kafka and ClickHouse modules; needs a
//     Docker engine. Images: TAILLIGHT_KAFKA_IMAGE, TAILLIGHT_CLICKHOUSE_IMAGE.
//   - external: servers named by TAILLIGHT_KAFKA_BROKERS (comma-separated
//     host:port) and TAILLIGHT_CLICKHOUSE_ADDR (native host:port), with
//     optional TAILLIGHT_CLICKHOUSE_USER, _PASSWORD and _DATABASE.
//
// Unset, it is local when java, the jars and clickhouse-server are all there,
// else containers when a Docker engine answers, else local (which then says
// what is missing). external is never picked by itself, so variables exported
// for running taillight against a real cluster cannot point tests at it.
//
// A backend that cannot be had skips the test with a message naming what is
// missing and how to get it; with TAILLIGHT_E2E=1 it fails the test instead.
// -short skips every test that calls Start.
package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/testcontainers/testcontainers-go"
	tcclickhouse "github.com/testcontainers/testcontainers-go/modules/clickhouse"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
)

// Backend names, the values of TAILLIGHT_BACKEND.
const (
	BackendLocal      = "local"
	BackendContainers = "containers"
	BackendExternal   = "external"
)

// Default container images for the containers backend. The Kafka module
// drives Confluent's confluent-local image (KRaft).
const (
	DefaultKafkaImage      = "confluentinc/confluent-local:7.5.0"
	DefaultClickHouseImage = "clickhouse/clickhouse-server:25.8"
)

// startTimeout bounds bringing up a backend (a container pull can be slow).
const startTimeout = 5 * time.Minute

// errUnavailable marks a backend that cannot be had on this machine (as
// opposed to one that is there but broken, which always fails the test).
var errUnavailable = errors.New("unavailable")

// Env is the servers the package's tests run against. Its fields are
// read-only once Start returned it. Tests sharing it must use their own topics
// and databases (TopicName, Database).
type Env struct {
	// Backend is BackendLocal, BackendContainers or BackendExternal.
	Backend string
	// Brokers are Kafka seed brokers, host:port.
	Brokers []string
	// ClickHouseAddr is ClickHouse's native-protocol host:port, reached with
	// ClickHouseUser / ClickHousePassword; ClickHouseDatabase exists there.
	ClickHouseAddr     string
	ClickHouseUser     string
	ClickHousePassword string
	ClickHouseDatabase string

	// Kafka and ClickHouse are the processes behind the local backend (nil for
	// the others), for fault tests: StopBroker/StartBroker, Stop/Kill/Start.
	// A test that stops one must restart it before returning and must not run
	// in parallel with others (RequireLocal says whether it may).
	Kafka      *devenv.Kafka
	ClickHouse *devenv.ClickHouse

	closers []func() error
}

var shared struct {
	once sync.Once
	mu   sync.Mutex
	env  *Env
	err  error
	done bool // Main has torn the env down
}

// Start returns the package's shared Env, starting the backend on first use.
// It skips the test under -short, and when the backend cannot be had (fails
// instead with TAILLIGHT_E2E=1); a backend that is there but does not come up
// fails the test.
func Start(t testing.TB) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test needs real Kafka and ClickHouse; skipped under -short")
	}
	shared.once.Do(func() {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		env, err := startEnv(ctx, harnessLog())
		shared.mu.Lock()
		shared.env, shared.err = env, err
		shared.mu.Unlock()
		if err == nil {
			fmt.Fprintf(os.Stderr, "integration: %s backend up in %s: kafka %s, clickhouse %s\n",
				env.Backend, time.Since(t0).Round(time.Millisecond), strings.Join(env.Brokers, ","), env.ClickHouseAddr)
		}
	})
	shared.mu.Lock()
	env, err, done := shared.env, shared.err, shared.done
	shared.mu.Unlock()
	if done {
		t.Fatal("integration.Start called after Main tore the shared environment down")
	}
	if err != nil {
		failOrSkip(t, err)
	}
	return env
}

// Main runs the package's tests and then tears the shared Env down; TestMain
// is `func TestMain(m *testing.M) { os.Exit(integration.Main(m)) }`. A
// teardown error turns a passing run into a failing one.
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	env := shared.env
	shared.env, shared.done = nil, true
	shared.mu.Unlock()
	if env != nil {
		if err := env.close(); err != nil {
			fmt.Fprintf(os.Stderr, "integration: tear down %s backend: %v\n", env.Backend, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// failOrSkip reports err: unavailable backends skip (or fail with
// TAILLIGHT_E2E=1); anything else fails.
func failOrSkip(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, errUnavailable) && !errors.Is(err, devenv.ErrKafkaNotInstalled) && !errors.Is(err, devenv.ErrClickHouseNotFound) {
		t.Fatalf("integration backend failed to start: %v", err)
	}
	if testenv.E2E() {
		t.Fatalf("TAILLIGHT_E2E=1 and the integration backend is unavailable: %v", err)
	}
	t.Skipf("integration backend unavailable (set TAILLIGHT_E2E=1 to fail instead): %v", err)
}

// RequireLocal skips the test unless the Env runs on the local backend, whose
// processes a fault test can stop and start.
func (e *Env) RequireLocal(t testing.TB) {
	t.Helper()
	if e.Kafka == nil || e.ClickHouse == nil {
		t.Skipf("test stops and starts servers: needs TAILLIGHT_BACKEND=local, have %s", e.Backend)
	}
}

// StartKafkaCluster starts a separate local Apache Kafka cluster of brokers
// nodes (1 or 3) for one test, closed when the test ends, whatever the
// package's backend: tests that kill brokers use it so they disturb no one.
// With 3 nodes, topics default to replication factor 3 and
// min.insync.replicas 2. It skips (fails with TAILLIGHT_E2E=1) when java or
// the Kafka jars are missing.
func StartKafkaCluster(t testing.TB, brokers int) *devenv.Kafka {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real Kafka cluster; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	t0 := time.Now()
	k, err := devenv.StartKafka(ctx, devenv.KafkaConfig{Brokers: brokers, Log: harnessLog()})
	if err != nil {
		failOrSkip(t, err)
	}
	t.Logf("kafka cluster of %d brokers up in %s: %s", brokers, time.Since(t0).Round(time.Millisecond), strings.Join(k.Brokers(), ","))
	t.Cleanup(func() {
		if err := k.Close(); err != nil {
			t.Errorf("close kafka cluster: %v", err)
		}
	})
	return k
}

// KafkaClient returns a franz-go client seeded with the Env's brokers and
// opts, closed when the test ends.
func (e *Env) KafkaClient(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return NewKafkaClient(t, e.Brokers, opts...)
}

// NewKafkaClient returns a franz-go client seeded with brokers and opts,
// closed when the test ends.
func NewKafkaClient(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates topic with partitions partitions and replication factor
// min(3, brokers), and fails the test if it cannot.
func (e *Env) CreateTopic(t testing.TB, topic string, partitions int32) {
	t.Helper()
	CreateTopic(t, e.Brokers, topic, partitions, int16(min(3, len(e.Brokers))))
}

// CreateTopic creates topic on the cluster at brokers and fails the test if it
// cannot.
func CreateTopic(t testing.TB, brokers []string, topic string, partitions int32, rf int16) {
	t.Helper()
	cl := NewKafkaClient(t, brokers)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, rf, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s (%d partitions, rf %d): %v", topic, partitions, rf, err)
	}
}

// TopicName returns a topic name unique to this test and run.
func TopicName(t testing.TB) string {
	return "it-" + uniqueSuffix(t)
}

// ClickHouseOptions returns clickhouse-go options for the Env's server and
// database.
func (e *Env) ClickHouseOptions() *clickhouse.Options {
	return &clickhouse.Options{
		Addr: []string{e.ClickHouseAddr},
		Auth: clickhouse.Auth{Database: e.ClickHouseDatabase, Username: e.ClickHouseUser, Password: e.ClickHousePassword},
		// 18.16, the oldest target, speaks only the native protocol.
		Protocol:    clickhouse.Native,
		DialTimeout: 5 * time.Second,
	}
}

// ClickHouseConn opens a native connection to the Env's ClickHouse, checked
// with Ping and closed when the test ends.
func (e *Env) ClickHouseConn(t testing.TB) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(e.ClickHouseOptions())
	if err != nil {
		t.Fatalf("open clickhouse %s: %v", e.ClickHouseAddr, err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping clickhouse %s: %v", e.ClickHouseAddr, err)
	}
	return conn
}

// Database creates a database unique to this test, dropped when it ends, and
// returns its name.
func (e *Env) Database(t testing.TB) string {
	t.Helper()
	conn := e.ClickHouseConn(t)
	name := "it_" + strings.ReplaceAll(uniqueSuffix(t), "-", "_")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return name
}

var nonName = regexp.MustCompile(`[^a-zA-Z0-9]+`)

func uniqueSuffix(t testing.TB) string {
	name := strings.Trim(strings.ToLower(nonName.ReplaceAllString(t.Name(), "-")), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return name + "-" + hex.EncodeToString(b[:])
}

func (e *Env) close() error {
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i]())
	}
	return errors.Join(errs...)
}

// harnessLog logs the launchers' lifecycle to stderr: warnings always, more
// with TAILLIGHT_TEST_LOG=debug or info.
func harnessLog() *slog.Logger {
	level := slog.LevelWarn
	switch os.Getenv("TAILLIGHT_TEST_LOG") {
	case "info":
		level = slog.LevelInfo
	case "debug":
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// chooseBackend reads TAILLIGHT_BACKEND, or picks one as the package doc says.
func chooseBackend(ctx context.Context) (string, error) {
	switch b := os.Getenv("TAILLIGHT_BACKEND"); b {
	case BackendLocal, BackendContainers, BackendExternal:
		return b, nil
	case "":
	default:
		return "", fmt.Errorf("TAILLIGHT_BACKEND=%q: want %s, %s or %s", b, BackendLocal, BackendContainers, BackendExternal)
	}
	if localMissing() == nil {
		return BackendLocal, nil
	}
	if dockerAnswers(ctx) == nil {
		return BackendContainers, nil
	}
	return BackendLocal, nil
}

// localMissing says what the local backend lacks, or nil.
func localMissing() error {
	var errs []error
	if _, err := devenv.FindClickHouse(); err != nil {
		errs = append(errs, fmt.Errorf("%w (%s)", err, devenv.ClickHouseInstallHint))
	}
	if err := devenv.KafkaInstalled(""); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func startEnv(ctx context.Context, log *slog.Logger) (*Env, error) {
	backend, err := chooseBackend(ctx)
	if err != nil {
		return nil, err
	}
	env := &Env{Backend: backend}
	switch backend {
	case BackendLocal:
		err = env.startLocal(ctx, log)
	case BackendContainers:
		err = env.startContainers(ctx)
	case BackendExternal:
		err = env.useExternal(ctx)
	}
	if err != nil {
		if cerr := env.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
		return nil, fmt.Errorf("%s backend: %w", backend, err)
	}
	return env, nil
}

func (e *Env) startLocal(ctx context.Context, log *slog.Logger) error {
	if err := localMissing(); err != nil {
		return fmt.Errorf("%w: %w", errUnavailable, err)
	}
	// Both start at once: a JVM and clickhouse-server each spend seconds
	// mostly waiting on themselves.
	var g errgroup.Group
	var k *devenv.Kafka
	var ch *devenv.ClickHouse
	g.Go(func() error {
		var err error
		k, err = devenv.StartKafka(ctx, devenv.KafkaConfig{Brokers: 1, Log: log})
		return err
	})
	g.Go(func() error {
		var err error
		ch, err = devenv.StartClickHouse(ctx, devenv.ClickHouseConfig{Log: log})
		return err
	})
	err := g.Wait()
	if k != nil {
		e.Kafka = k
		e.closers = append(e.closers, k.Close)
	}
	if ch != nil {
		e.ClickHouse = ch
		e.closers = append(e.closers, ch.Close)
	}
	if err != nil {
		return err
	}
	e.Brokers = k.Brokers()
	e.ClickHouseAddr = ch.Addr()
	e.ClickHouseUser = "default"
	e.ClickHouseDatabase = "default"
	return nil
}

// dockerAnswers reports whether a Docker engine answers; testcontainers
// panics on some broken setups, so that counts as not answering.
func dockerAnswers(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker provider: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Health(ctx)
}

func (e *Env) startContainers(ctx context.Context) error {
	if err := dockerAnswers(ctx); err != nil {
		return fmt.Errorf("%w: no Docker engine answers (%v); start one (or set DOCKER_HOST), or use TAILLIGHT_BACKEND=local", errUnavailable, err)
	}
	kimg := envOr("TAILLIGHT_KAFKA_IMAGE", DefaultKafkaImage)
	cimg := envOr("TAILLIGHT_CLICKHOUSE_IMAGE", DefaultClickHouseImage)
	var g errgroup.Group
	var kc *tckafka.KafkaContainer
	var cc *tcclickhouse.ClickHouseContainer
	const password = "taillight"
	g.Go(func() error {
		var err error
		kc, err = tckafka.Run(ctx, kimg, tckafka.WithClusterID("taillight-it"))
		if err != nil {
			return fmt.Errorf("kafka container %s: %w", kimg, err)
		}
		return nil
	})
	g.Go(func() error {
		var err error
		cc, err = tcclickhouse.Run(ctx, cimg, tcclickhouse.WithPassword(password), tcclickhouse.WithDatabase("taillight"))
		if err != nil {
			return fmt.Errorf("clickhouse container %s: %w", cimg, err)
		}
		return nil
	})
	err := g.Wait()
	// Run returns the container even on error, so it is terminated either way.
	if kc != nil {
		e.closers = append(e.closers, func() error { return testcontainers.TerminateContainer(kc) })
	}
	if cc != nil {
		e.closers = append(e.closers, func() error { return testcontainers.TerminateContainer(cc) })
	}
	if err != nil {
		return err
	}
	if e.Brokers, err = kc.Brokers(ctx); err != nil {
		return fmt.Errorf("kafka container brokers: %w", err)
	}
	if e.ClickHouseAddr, err = cc.ConnectionHost(ctx); err != nil {
		return fmt.Errorf("clickhouse container address: %w", err)
	}
	e.ClickHouseUser, e.ClickHousePassword, e.ClickHouseDatabase = cc.User, cc.Password, cc.DbName
	return nil
}

func (e *Env) useExternal(ctx context.Context) error {
	brokers, addr := os.Getenv("TAILLIGHT_KAFKA_BROKERS"), os.Getenv("TAILLIGHT_CLICKHOUSE_ADDR")
	var missing []string
	if brokers == "" {
		missing = append(missing, "TAILLIGHT_KAFKA_BROKERS (comma-separated host:port)")
	}
	if addr == "" {
		missing = append(missing, "TAILLIGHT_CLICKHOUSE_ADDR (native host:port)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: set %s", errUnavailable, strings.Join(missing, " and "))
	}
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			e.Brokers = append(e.Brokers, b)
		}
	}
	e.ClickHouseAddr = addr
	e.ClickHouseUser = envOr("TAILLIGHT_CLICKHOUSE_USER", "default")
	e.ClickHousePassword = os.Getenv("TAILLIGHT_CLICKHOUSE_PASSWORD")
	e.ClickHouseDatabase = envOr("TAILLIGHT_CLICKHOUSE_DATABASE", "default")

	// Check both answer now, so a typo reads as such and not as a test failure.
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers...))
	if err != nil {
		return fmt.Errorf("TAILLIGHT_KAFKA_BROKERS=%q: %w", brokers, err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).ListBrokers(pctx); err != nil {
		return fmt.Errorf("%w: kafka at TAILLIGHT_KAFKA_BROKERS=%q does not answer: %v", errUnavailable, brokers, err)
	}
	conn, err := clickhouse.Open(e.ClickHouseOptions())
	if err != nil {
		return fmt.Errorf("TAILLIGHT_CLICKHOUSE_ADDR=%q: %w", addr, err)
	}
	defer conn.Close()
	if err := conn.Ping(pctx); err != nil {
		return fmt.Errorf("%w: clickhouse at TAILLIGHT_CLICKHOUSE_ADDR=%q does not answer: %v", errUnavailable, addr, err)
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
