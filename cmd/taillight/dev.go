package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/taillight/taillight/internal/dash"
	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/processor"
	"github.com/taillight/taillight/producer"
	"github.com/taillight/taillight/schemas"
	"github.com/taillight/taillight/sinks/chsink"
)

func init() {
	register(&command{
		name:    "dev",
		summary: "the whole pipeline on this machine: Kafka, ClickHouse, ingest, processor, dashboard, load",
		help:    devHelp,
		flags: func() commandFlags {
			return &devFlags{ch: chsink.DefaultConfig(), retain: chsink.DefaultRetention(), ingest: producer.DefaultIngestConfig(), dash: dash.DefaultConfig()}
		},
	})
}

type devFlags struct {
	ch       chsink.Config
	retain   chsink.Retention
	ingest   producer.IngestConfig
	dash     dash.Config
	dir      string
	keep     bool
	chBinary string
	external bool // -clickhouse.addr given: no private server

	listenDash, listenIngest, listenMetrics, listenKafka string
	chPort, chHTTPPort                                   int

	partitions int
	linger     time.Duration

	generate bool
	rate     float64
	seed     uint64
	scripts  int
}

func (f *devFlags) register(c *cli) {
	c.config("clickhouse.", &f.ch)
	// dev starts its own server unless -clickhouse.addr is given: say so
	// rather than show the client's default address.
	if fl := c.fs.Lookup("clickhouse.addr"); fl != nil {
		fl.DefValue = ""
		fl.Usage = "an existing ClickHouse (native protocol, host:port) to use instead of starting a private one"
	}
	c.afterParse(func() error {
		f.external = isSet(c.fs, "clickhouse.addr")
		return nil
	})
	c.config("retention.", &f.retain)
	f.ingest.RegisterFlags(c.fs, "")
	c.afterParse(func() error {
		if len(f.ingest.Tokens) == 0 && f.ingest.TokensFile == "" {
			f.ingest.Tokens = []string{newDevToken()}
		}
		return f.ingest.Validate()
	})
	dashConfig(c, &f.dash, &f.ch)
	c.fs.StringVar(&f.dir, "dir", "", "where to create this run's data directory (default $TMPDIR)")
	c.fs.BoolVar(&f.keep, "keep", false, "keep the data directory (ClickHouse data and logs) on exit")
	c.fs.StringVar(&f.chBinary, "clickhouse.binary", "", "the ClickHouse server binary to run (default: clickhouse-server or clickhouse on $PATH, /usr/sbin, /usr/bin, /usr/local/bin)")
	c.fs.StringVar(&f.listenDash, "listen.dash", "127.0.0.1:8090", "address of the dashboard")
	c.fs.StringVar(&f.listenIngest, "listen.ingest", "127.0.0.1:8080", "address of POST "+producer.IngestPath)
	c.fs.StringVar(&f.listenMetrics, "listen.metrics", "127.0.0.1:9102", "address of /metrics, /healthz and /readyz for the whole pipeline")
	c.fs.StringVar(&f.listenKafka, "listen.kafka", "127.0.0.1:19092", "address of the in-process Kafka (kfake)")
	c.fs.IntVar(&f.chPort, "listen.clickhouse", 19000, "native port of the private ClickHouse (0 = a free one; unused with -clickhouse.addr)")
	c.fs.IntVar(&f.chHTTPPort, "listen.clickhouse-http", 18123, "HTTP port of the private ClickHouse (0 = a free one; unused with -clickhouse.addr)")
	c.fs.IntVar(&f.partitions, "kafka.partitions", 4, "partitions of the TraceItem topic and of its DLQ")
	c.fs.DurationVar(&f.linger, "flush.linger", time.Second, "write a partition's block to ClickHouse this long after its first record at the latest")
	c.fs.BoolVar(&f.generate, "generate", true, "produce a steady synthetic load")
	c.fs.Float64Var(&f.rate, "generate.rate", 50, "synthetic events per second")
	c.fs.Uint64Var(&f.seed, "generate.seed", 1, "random seed of the synthetic load")
	c.fs.IntVar(&f.scripts, "generate.scripts", 24, "number of distinct synthetic Worker scripts")
	c.afterParse(func() error {
		if f.partitions <= 0 || f.linger <= 0 || f.rate <= 0 || f.scripts <= 0 {
			return errors.New("-kafka.partitions, -flush.linger, -generate.rate and -generate.scripts must be positive")
		}
		return nil
	})
}

const devHelp = `Usage: taillight dev [flags]

Runs the whole pipeline on this machine: an in-process Kafka (kfake), a
private ClickHouse (or -clickhouse.addr), the migrations, ingest, the
processor, the dashboard and a synthetic load. It prints where everything
is. Ctrl-C stops it in order (load, ingest, processor flush, dashboard,
ClickHouse) and removes its data unless -keep.

Flags:
`

func (f *devFlags) run(ctx context.Context, log *slog.Logger, s stdio) int {
	d := &devRun{f: f, log: log, out: s.out}
	err := d.run(ctx)
	if cerr := d.close(); err == nil {
		err = cerr
	}
	if err != nil && ctx.Err() != nil {
		// Ctrl-C while starting: a stop, not a failure.
		log.Info("interrupted while starting", "err", err)
		err = nil
	}
	if err != nil {
		fmt.Fprintf(s.err, "taillight dev: %v\n", err)
		return exitError
	}
	return exitOK
}

// newDevToken returns a random bearer token for this run's ingest.
func newDevToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "dev-" + hex.EncodeToString(b)
}

// devRun is one `taillight dev`: what it started, closed in reverse by close.
type devRun struct {
	f   *devFlags
	log *slog.Logger
	out io.Writer

	dir     string
	closers []devCloser
}

type devCloser struct {
	what string
	fn   func() error
}

func (d *devRun) onClose(what string, fn func() error) {
	d.closers = append(d.closers, devCloser{what, fn})
}

// close stops what run started, last started first, then removes the data
// directory unless -keep.
func (d *devRun) close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		c := d.closers[i]
		if !strings.HasSuffix(c.what, "listener") {
			d.log.Info("stopping " + c.what)
		}
		if err := c.fn(); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.what, err))
		}
	}
	d.closers = nil
	if d.dir != "" {
		if d.f.keep {
			fmt.Fprintf(d.out, "\nkept the data directory: %s\n", d.dir)
		} else if err := os.RemoveAll(d.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", d.dir, err))
		}
	}
	return errors.Join(errs...)
}

// listen binds addr or explains that the port is taken and which flag moves it.
func listen(addr, flagName string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s is taken by another process; pick another address with -%s (port 0 picks a free one)", addr, flagName)
		}
		return nil, fmt.Errorf("listen on %s (-%s): %w", addr, flagName, err)
	}
	return ln, nil
}

// serveHTTP serves h on ln until the returned stop is called, which waits up
// to timeout for requests in flight.
func (d *devRun) serveHTTP(ln net.Listener, h http.Handler, timeout time.Duration) func() error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := srv.Shutdown(ctx)
		if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = serr
		}
		return err
	}
}

func (d *devRun) run(ctx context.Context) error {
	f, log := d.f, d.log
	t0 := time.Now()

	// Bind every port first, so taken ones are reported at once (all of
	// them, with the flags that move them), not after ClickHouse took
	// seconds to start.
	var portErrs []error
	bind := func(addr, def, flagName string) net.Listener {
		ln, err := listen(listenAddr(addr, def), flagName)
		if err != nil {
			portErrs = append(portErrs, err)
		}
		return ln
	}
	lnKafka := bind(f.listenKafka, "127.0.0.1:19092", "listen.kafka")
	lnIngest := bind(f.listenIngest, "127.0.0.1:8080", "listen.ingest")
	lnDash := bind(f.listenDash, "127.0.0.1:8090", "listen.dash")
	lnMetrics := bind(f.listenMetrics, "127.0.0.1:9102", "listen.metrics")
	if !f.external {
		// The private ClickHouse binds its own ports later: check them now.
		for _, p := range []struct {
			port     int
			flagName string
		}{{f.chPort, "listen.clickhouse"}, {f.chHTTPPort, "listen.clickhouse-http"}} {
			if p.port == 0 {
				continue
			}
			if ln := bind(strconv.Itoa(p.port), "127.0.0.1:0", p.flagName); ln != nil {
				_ = ln.Close()
			}
		}
	}
	for _, ln := range []net.Listener{lnIngest, lnDash, lnMetrics} {
		if ln != nil {
			d.onClose("listener", func() error { _ = ln.Close(); return nil })
		}
	}
	var kafkaOnce sync.Once
	lnKafkaUsed := false
	if lnKafka != nil {
		d.onClose("kafka listener", func() error {
			if !lnKafkaUsed {
				return lnKafka.Close()
			}
			return nil
		})
	}
	if len(portErrs) > 0 {
		return errors.Join(portErrs...)
	}

	var err error
	d.dir, err = os.MkdirTemp(f.dir, "taillight-dev-")
	if err != nil {
		return fmt.Errorf("create the data directory: %w", err)
	}

	// ClickHouse: ours, or the one named by -clickhouse.addr.
	chCfg := f.ch
	dashUser := chCfg
	var chServer *devenv.ClickHouse
	if !f.external {
		log.Info("starting a private ClickHouse", "dir", d.dir+"/clickhouse")
		chServer, err = devenv.StartClickHouse(ctx, devenv.ClickHouseConfig{
			Dir:      d.dir + "/clickhouse",
			TCPPort:  f.chPort,
			HTTPPort: f.chHTTPPort,
			Binary:   f.chBinary,
			Log:      log,
		})
		if err != nil {
			if errors.Is(err, devenv.ErrClickHouseNotFound) {
				return fmt.Errorf("%w; then run taillight dev again (make run installs it and starts dev), name the binary with -clickhouse.binary, or use a running server with -clickhouse.addr", err)
			}
			if errors.Is(err, devenv.ErrPortInUse) {
				return fmt.Errorf("%w (move it with -listen.clickhouse / -listen.clickhouse-http, or use a running server with -clickhouse.addr)", err)
			}
			return err
		}
		d.onClose("clickhouse", chServer.Close)
		chCfg.Addrs = []string{chServer.Addr()}
		chCfg.User, chCfg.Password = "default", ""
		// The dashboard reads as the server's read-only user, as it should
		// in production.
		dashUser = chCfg
		dashUser.User = "readonly"
	}

	reg := newRegistry()
	sink, err := chsink.New(ctx, chCfg, log, reg)
	if err != nil {
		return fmt.Errorf("connect to clickhouse at %s: %w", chCfg.Addrs[0], err)
	}
	d.onClose("clickhouse writer", func() error { sink.Close(); return nil })
	res, err := sink.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate clickhouse: %w", err)
	}
	log.Info("clickhouse migrations checked", append(migrationCounts(res), "database", chCfg.Database)...)
	retainCtx, stopRetain := context.WithCancel(ctx)
	retained := make(chan struct{})
	go func() {
		defer close(retained)
		sink.RetainLoop(retainCtx, f.retain)
	}()
	d.onClose("retention", func() error { stopRetain(); <-retained; return nil })

	dashConn, err := openDashConn(ctx, dashUser)
	if err != nil {
		return fmt.Errorf("dashboard: connect to clickhouse: %w", err)
	}
	d.onClose("dashboard clickhouse connection", dashConn.Close)
	dsrv, err := dash.New(f.dash, dashConn, log, reg)
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	logDashLimits(ctx, dsrv, dashUser.User, log)

	// Served before the processor starts, so stopped after it flushed
	// (closers run last first): its last refresh sees everything. It also
	// serves the pipeline's metrics, like `taillight dash`.
	var ready readiness
	ready.add("clickhouse", func(ctx context.Context) error { return dashConn.Ping(ctx) })
	dmux := http.NewServeMux()
	dmux.Handle("/", dsrv)
	opsHandlers(dmux, reg, ready.check)
	d.onClose("dashboard", d.serveHTTP(lnDash, dmux, 5*time.Second))

	// Kafka: in-process, topic and DLQ created up front.
	topic := schemas.DefaultTopic
	dlq := topic + schemas.DLQSuffix
	lnKafkaUsed = true
	kc, err := devenv.StartKfake(1,
		kfake.SeedTopics(int32(f.partitions), topic, dlq),
		kfake.ListenFn(func(string, string) (net.Listener, error) {
			var ln net.Listener
			kafkaOnce.Do(func() { ln = lnKafka })
			if ln == nil {
				return nil, errors.New("kfake asked for a second listener")
			}
			return ln, nil
		}))
	if err != nil {
		_ = lnKafka.Close()
		return err
	}
	d.onClose("kafka", func() error { kc.Close(); return nil })
	brokers := kc.ListenAddrs()

	// The processor; stopping it flushes and commits every partition.
	pc := processor.DefaultConfig()
	pc.Kafka.Brokers, pc.Topic, pc.Group, pc.DLQTopic = brokers, topic, "taillight-dev", dlq
	pc.Linger = f.linger
	pc.Limits = f.ingest.Limits // the -limits.* flags: what ingest accepts, the processor stores
	proc, err := processor.New(pc, sink, log, reg)
	if err != nil {
		return err
	}
	ready.add("processor", func(context.Context) error { return proc.Ready() })
	pctx, pcancel := context.WithCancel(context.WithoutCancel(ctx))
	procDone := make(chan error, 1)
	go func() { procDone <- proc.Run(pctx) }()
	d.onClose("processor (flushing)", func() error {
		pcancel()
		return <-procDone
	})

	mmux := http.NewServeMux()
	opsHandlers(mmux, reg, ready.check)
	d.onClose("metrics server", d.serveHTTP(lnMetrics, mmux, 5*time.Second))

	// Ingest.
	pcfg := producer.DefaultConfig()
	pcfg.Kafka.Brokers, pcfg.Topic, pcfg.ClientID = brokers, topic, "taillight-dev-ingest"
	pub, err := producer.New(pcfg, log, reg)
	if err != nil {
		return err
	}
	d.onClose("ingest producer", func() error {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return pub.Close(cctx)
	})
	in, err := producer.NewIngest(f.ingest, pub, log, reg)
	if err != nil {
		return err
	}
	ready.add("kafka", pub.Ready)
	imux := http.NewServeMux()
	imux.Handle(producer.IngestPath, in)
	d.onClose("ingest", d.serveHTTP(lnIngest, imux, f.ingest.PublishTimeout+5*time.Second))

	// The synthetic load, straight to Kafka (it is the first thing stopped).
	genDone := make(chan error, 1)
	if f.generate {
		gcfg := producer.DefaultConfig()
		gcfg.Kafka.Brokers, gcfg.Topic, gcfg.ClientID = brokers, topic, "taillight-dev-generator"
		gpub, err := producer.New(gcfg, log, nil)
		if err != nil {
			return err
		}
		gen, err := producer.NewGenerator(producer.GenConfig{
			Seed:    f.seed,
			Start:   time.Now(),
			Step:    max(time.Duration(float64(time.Second)/f.rate), time.Nanosecond),
			Scripts: f.scripts,
		})
		if err != nil {
			return err
		}
		gctx, gcancel := context.WithCancel(context.WithoutCancel(ctx))
		st := &genStats{start: time.Now()}
		gs := &kafkaSink{pub: gpub}
		go func() {
			err := generateLoop(gctx, gen, gs, 0, f.rate, st)
			if cerr := gs.close(context.Background()); err == nil || errors.Is(err, context.Canceled) {
				err = cerr
			}
			genDone <- err
		}()
		d.onClose("generator", func() error {
			gcancel()
			err := <-genDone
			log.Info("generator stopped", "events", st.events.Load())
			return err
		})
	}

	d.banner(brokers, chCfg, chServer, lnDash.Addr().String(), lnIngest.Addr().String(), lnMetrics.Addr().String(), time.Since(t0))

	select {
	case <-ctx.Done():
		log.Info("stopping taillight dev")
		return nil
	case err := <-procDone:
		procDone <- err // for the closer
		if err == nil {
			err = errors.New("the processor stopped")
		}
		return fmt.Errorf("processor: %w", err)
	case err := <-genDone:
		genDone <- err
		return fmt.Errorf("generator: %w", err)
	}
}

// banner prints where everything is.
func (d *devRun) banner(brokers []string, ch chsink.Config, srv *devenv.ClickHouse, dashAddr, ingestAddr, metricsAddr string, took time.Duration) {
	f, w := d.f, d.out
	token := "<a token from " + f.ingest.TokensFile + ">"
	if len(f.ingest.Tokens) > 0 {
		token = f.ingest.Tokens[0]
	}
	ingestURL := "http://" + ingestAddr + producer.IngestPath
	chHost, chPort, _ := net.SplitHostPort(ch.Addrs[0])
	fmt.Fprintf(w, "\ntaillight dev is up (%s).\n\n", took.Round(time.Millisecond))
	fmt.Fprintf(w, "  Dashboard   http://%s/\n", dashAddr)
	fmt.Fprintf(w, "  Ingest      %s   (bearer token %s)\n", ingestURL, token)
	fmt.Fprintf(w, "  Metrics     http://%s/metrics   (/healthz, /readyz)\n", metricsAddr)
	fmt.Fprintf(w, "  Kafka       %s   topic %s, DLQ %s (in-process kfake)\n", strings.Join(brokers, ","), schemas.DefaultTopic, schemas.DefaultTopic+schemas.DLQSuffix)
	if srv != nil {
		fmt.Fprintf(w, "  ClickHouse  %s (native), http://%s (HTTP), database %s; data in %s\n", srv.Addr(), srv.HTTPAddr(), ch.Database, srv.Dir())
	} else {
		fmt.Fprintf(w, "  ClickHouse  %s (native), database %s\n", ch.Addrs[0], ch.Database)
	}
	if f.generate {
		fmt.Fprintf(w, "  Load        %g synthetic events/s (seed %d, %d scripts)\n", f.rate, f.seed, f.scripts)
	} else {
		fmt.Fprintf(w, "  Load        none (-generate=false)\n")
	}
	fmt.Fprintf(w, "\nSend your own TraceItems (what a Tail Worker posts):\n\n")
	fmt.Fprintf(w, "  curl -sS %s -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' \\\n", ingestURL, token)
	fmt.Fprintf(w, "    --data '[{\"scriptName\":\"hello\",\"outcome\":\"ok\",\"eventTimestamp\":'$(date +%%s000)',\"event\":{\"request\":{\"url\":\"https://example.com/users/4111111111111111?token=abc\",\"method\":\"GET\",\"headers\":{\"authorization\":\"Bearer s3cret\"}},\"response\":{\"status\":200}},\"logs\":[],\"exceptions\":[]}]'\n")
	fmt.Fprintf(w, "\nQuery ClickHouse:\n\n")
	user := ""
	if ch.User != "" && ch.User != "default" {
		user = " --user " + ch.User
	}
	fmt.Fprintf(w, "  clickhouse-client --host %s --port %s%s --database %s   (or: clickhouse client …)\n\n", chHost, chPort, user, ch.Database)
	fmt.Fprintf(w, "  %s\n", devFirstQuery)
	if d.f.keep {
		fmt.Fprintf(w, "\nCtrl-C stops everything; -keep leaves the data in %s.\n\n", d.dir)
	} else {
		fmt.Fprintf(w, "\nCtrl-C stops everything and removes %s.\n\n", d.dir)
	}
}

// devFirstQuery is the query the banner suggests: the busiest routes of the
// last five minutes, with how many failed.
const devFirstQuery = "SELECT script_name, method, route, count() AS requests, countIf(outcome != 'ok' OR status >= 500) AS failed " +
	"FROM trace_items FINAL WHERE event_time > now() - 300 GROUP BY script_name, method, route ORDER BY requests DESC LIMIT 10"

// readiness is the pipeline's /readyz: every part must answer.
type readiness struct {
	mu     sync.Mutex
	checks []readyCheck
}

type readyCheck struct {
	name string
	fn   func(context.Context) error
}

func (r *readiness) add(name string, fn func(context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, readyCheck{name, fn})
}

func (r *readiness) check() error {
	r.mu.Lock()
	checks := append([]readyCheck(nil), r.checks...)
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var errs []error
	for _, c := range checks {
		if err := c.fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}
