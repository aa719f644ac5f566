package devenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// KafkaVersion is the Apache Kafka release pinned in
// deployments/local/kafka/pom.xml (a test keeps them equal), the one
// install-kafka.sh resolves and StartKafka runs.
const KafkaVersion = "4.3.1"

// ErrKafkaNotInstalled is returned (wrapped) by StartKafka when java or the
// broker's jars cannot be found; callers that may skip (tests) branch on it.
var ErrKafkaNotInstalled = errors.New("kafka not installed")

// ErrKafkaPortTaken is returned (wrapped) when a broker cannot bind its port.
var ErrKafkaPortTaken = errors.New("kafka port already taken")

// KafkaConfig configures StartKafka. The zero value is a usable single broker.
type KafkaConfig struct {
	// Brokers is the number of nodes, 1 (default) or 3. Each node is a combined
	// KRaft broker+controller; with 3 the controller quorum has 3 voters, so
	// one node may be down at a time.
	Brokers int
	// Dir is where the cluster's temporary directory is made (default
	// os.TempDir()). Close removes the temporary directory, not Dir.
	Dir string
	// Log receives lifecycle messages (default: discarded). The brokers' own
	// logs go to <temp dir>/node-N/server.log.
	Log *slog.Logger
	// StartTimeout bounds each wait for a broker to answer metadata (default 90s:
	// three JVMs starting on two busy cores can take a while).
	StartTimeout time.Duration
	// ExtraProps are added to (and override) every node's server.properties.
	ExtraProps map[string]string
	// Listeners are extra client listeners (TLS, SASL) every node opens on
	// free ports of its own, besides the PLAINTEXT one Brokers returns (which
	// the readiness probe and inter-broker traffic keep using). Their
	// settings go in ExtraProps, as listener.name.<lowercase name>.<key>.
	Listeners []KafkaListener
	// JarsDir holds the broker's jars (default: deployments/local/.kafka-jars/
	// <KafkaVersion>, found by walking up from the working directory and from
	// this source file). install-kafka.sh fills it.
	JarsDir string
	// Java is the java binary (default: $JAVA_HOME/bin/java, else java on PATH).
	Java string
	// JVMOpts replace the default JVM options (heap -Xms128m -Xmx512m, serial
	// GC, C1 only: three brokers fit on a small machine and start fast).
	JVMOpts []string
}

// KafkaListener is an extra client listener (see KafkaConfig.Listeners).
type KafkaListener struct {
	// Name is the listener name: upper-case letters, digits and _, not
	// PLAINTEXT or CONTROLLER.
	Name string
	// Protocol is its security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.
	Protocol string
}

var kafkaListenerName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// Validate reports a configuration StartKafka cannot run.
func (c *KafkaConfig) Validate() error {
	if c.Brokers != 0 && c.Brokers != 1 && c.Brokers != 3 {
		return fmt.Errorf("kafka: brokers = %d; want 1 or 3", c.Brokers)
	}
	seen := map[string]bool{"PLAINTEXT": true, "CONTROLLER": true}
	for _, l := range c.Listeners {
		if !kafkaListenerName.MatchString(l.Name) || seen[l.Name] {
			return fmt.Errorf("kafka: listener name %q: want a new upper-case name (not PLAINTEXT or CONTROLLER)", l.Name)
		}
		seen[l.Name] = true
		switch l.Protocol {
		case "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL":
		default:
			return fmt.Errorf("kafka: listener %s: protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", l.Name, l.Protocol)
		}
	}
	if c.StartTimeout < 0 {
		return fmt.Errorf("kafka: start timeout %s must not be negative", c.StartTimeout)
	}
	return nil
}

var defaultKafkaJVMOpts = []string{
	"-Xms128m", "-Xmx512m",
	// Serial GC and C1-only JIT: far less CPU spent starting (the brokers share
	// two cores with the tests) for throughput that is plenty for tests.
	"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
	"-XX:+ExitOnOutOfMemoryError",
	// No hsperfdata files left in /tmp by a killed JVM.
	"-XX:-UsePerfData",
	"-Djava.awt.headless=true",
}

// Kafka is a running local Apache Kafka cluster started by StartKafka. Its
// methods are safe for concurrent use.
type Kafka struct {
	cfg       KafkaConfig
	log       *slog.Logger
	dir       string
	java      string
	classpath string
	clusterID string
	nodes     []*kafkaNode
	cds       string // class-data archive in use or being made; "" = none

	// guarded by mu: the node whose JVM dumps the archive to cdsTmp on exit
	cdsNode  *kafkaNode
	cdsTmp   string
	cdsReady bool // cdsNode answered metadata: its archive holds a broker's classes

	mu     sync.Mutex
	closed bool
}

type kafkaNode struct {
	id       int32
	port     int
	ctrlPort int
	extra    []int // ports of KafkaConfig.Listeners, in order
	dir      string
	props    string
	logPath  string

	// guarded by Kafka.mu
	proc *kafkaProc
}

type kafkaProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
	err  error         // Wait's result, valid after done
}

// StartKafka formats KRaft storage and starts cfg.Brokers Apache Kafka nodes on
// free loopback ports, and returns when every broker answers metadata listing
// all of them. On any failure nothing is left running and the temporary
// directory is removed. Errors wrap ErrKafkaNotInstalled when java or the jars
// are missing, ErrKafkaPortTaken when a port could not be bound (after retrying with
// other ports), and otherwise name the broker and end with its log's tail.
func StartKafka(ctx context.Context, cfg KafkaConfig) (*Kafka, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Brokers == 0 {
		cfg.Brokers = 1
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 90 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.JVMOpts == nil {
		cfg.JVMOpts = defaultKafkaJVMOpts
	}
	java, err := kafkaFindJava(cfg.Java)
	if err != nil {
		return nil, err
	}
	jars, err := findKafkaJars(cfg.JarsDir)
	if err != nil {
		return nil, err
	}
	// Ports are picked by binding :0 and closing, so another process may grab
	// one before the broker binds it; then start over with fresh ports.
	for attempt := 1; ; attempt++ {
		k, err := startKafkaOnce(ctx, cfg, java, jars)
		if err == nil || !errors.Is(err, ErrKafkaPortTaken) || attempt == 3 {
			return k, err
		}
		cfg.Log.Warn("kafka port raced with another process; retrying with new ports", "err", err, "attempt", attempt)
	}
}

func startKafkaOnce(ctx context.Context, cfg KafkaConfig, java, jars string) (*Kafka, error) {
	t0 := time.Now()
	dir, err := os.MkdirTemp(cfg.Dir, "taillight-kafka-")
	if err != nil {
		return nil, fmt.Errorf("kafka: make temp dir: %w", err)
	}
	k := &Kafka{
		cfg:       cfg,
		log:       cfg.Log,
		dir:       dir,
		java:      java,
		classpath: filepath.Join(jars, "*"),
		clusterID: randomKafkaID(),
		cds:       kafkaCDSArchive(java, jars),
	}
	ok := false
	defer func() {
		if !ok {
			k.close(false)
		}
	}()
	stride := 2 + len(cfg.Listeners)
	ports, err := kafkaPickPorts(stride * cfg.Brokers)
	if err != nil {
		return nil, fmt.Errorf("kafka: pick ports: %w", err)
	}
	for i := range cfg.Brokers {
		n := &kafkaNode{
			id:       int32(i + 1),
			port:     ports[stride*i],
			ctrlPort: ports[stride*i+1],
			extra:    ports[stride*i+2 : stride*(i+1)],
			dir:      filepath.Join(dir, fmt.Sprintf("node-%d", i+1)),
		}
		n.props = filepath.Join(n.dir, "server.properties")
		n.logPath = filepath.Join(n.dir, "server.log")
		k.nodes = append(k.nodes, n)
	}
	for _, n := range k.nodes {
		if err := k.writeNodeConfig(n); err != nil {
			return nil, err
		}
	}
	if err := k.format(ctx, jars); err != nil {
		return nil, err
	}
	tFormat := time.Since(t0)
	for _, n := range k.nodes {
		if err := k.launch(n); err != nil {
			return nil, err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := k.waitReady(wctx, k.nodes...); err != nil {
		return nil, err
	}
	ok = true
	k.log.Info("kafka started", "brokers", k.Brokers(), "version", KafkaVersion,
		"dir", dir, "format", tFormat.Round(time.Millisecond), "took", time.Since(t0).Round(time.Millisecond))
	return k, nil
}

// Brokers returns every node's host:port, including stopped ones (clients
// seeded with all of them find whichever are up).
func (k *Kafka) Brokers() []string {
	out := make([]string, len(k.nodes))
	for i, n := range k.nodes {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port))
	}
	return out
}

// ListenerBrokers returns every node's host:port of the extra listener
// named name (KafkaConfig.Listeners), or nil if there is none.
func (k *Kafka) ListenerBrokers(name string) []string {
	for j, l := range k.cfg.Listeners {
		if l.Name != name {
			continue
		}
		out := make([]string, len(k.nodes))
		for i, n := range k.nodes {
			out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(n.extra[j]))
		}
		return out
	}
	return nil
}

// NodeID returns the Kafka node.id of broker i (0-based): i+1.
func (k *Kafka) NodeID(i int) int32 { return k.nodes[i].id }

// Dir returns the cluster's temporary directory (node-N/ holds each node's
// server.properties, server.log and data).
func (k *Kafka) Dir() string { return k.dir }

// Running reports whether broker i's process is alive.
func (k *Kafka) Running(i int) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.nodes[i].proc
	return p != nil && !p.exited()
}

// StopBroker stops broker i (0-based): with kill, SIGKILL at once; otherwise
// SIGTERM (a controlled shutdown) and SIGKILL if it has not exited when ctx
// ends. Its ports and data are kept for StartBroker. Stopping a stopped broker
// is a no-op.
func (k *Kafka) StopBroker(ctx context.Context, i int, kill bool) error {
	if i < 0 || i >= len(k.nodes) {
		return fmt.Errorf("kafka: no broker %d (have %d)", i, len(k.nodes))
	}
	n := k.nodes[i]
	k.mu.Lock()
	p := n.proc
	n.proc = nil
	k.mu.Unlock()
	if p == nil {
		return nil
	}
	t0 := time.Now()
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	p.signal(sig)
	clean := !kill
	select {
	case <-p.done:
	case <-ctx.Done():
		p.signal(syscall.SIGKILL)
		<-p.done
		clean = false
		k.log.Warn("kafka broker did not stop in time; killed", "node", n.id, "err", ctx.Err())
	}
	k.finishCDS(n, clean)
	k.log.Info("kafka broker stopped", "node", n.id, "signal", sig.String(), "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// StartBroker restarts broker i (0-based), stopped by StopBroker, on the same
// ports and data, and waits (up to StartTimeout) until it answers metadata.
func (k *Kafka) StartBroker(ctx context.Context, i int) error {
	if i < 0 || i >= len(k.nodes) {
		return fmt.Errorf("kafka: no broker %d (have %d)", i, len(k.nodes))
	}
	n := k.nodes[i]
	k.mu.Lock()
	running := n.proc != nil
	k.mu.Unlock()
	if running {
		return fmt.Errorf("kafka: broker %d (node %d) is already running", i, n.id)
	}
	for _, p := range append([]int{n.port, n.ctrlPort}, n.extra...) {
		if err := kafkaPortFree(p); err != nil {
			return fmt.Errorf("kafka: restart node %d: %w", n.id, err)
		}
	}
	t0 := time.Now()
	if err := k.launch(n); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, k.cfg.StartTimeout)
	defer cancel()
	if err := k.waitReady(wctx, n); err != nil {
		_ = k.StopBroker(context.Background(), i, true)
		return err
	}
	k.log.Info("kafka broker restarted", "node", n.id, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// Close kills every broker and removes the temporary directory. It is safe to
// call more than once.
func (k *Kafka) Close() error { return k.close(true) }

// close kills every broker and removes the directory; with dumpCDS it first
// lets the JVM writing the class-data archive exit by itself (after a failed
// start it is not worth waiting for).
func (k *Kafka) close(dumpCDS bool) error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	k.mu.Unlock()
	k.mu.Lock()
	dumper := k.cdsNode
	k.mu.Unlock()
	for i, n := range k.nodes {
		if dumpCDS && n == dumper {
			// The JVM writes the class-data archive only when it exits normally.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = k.StopBroker(ctx, i, false)
			cancel()
		}
	}
	for i := range k.nodes {
		// Tests keep no data, so no need for a controlled shutdown.
		_ = k.StopBroker(context.Background(), i, true)
	}
	if err := os.RemoveAll(k.dir); err != nil {
		return fmt.Errorf("kafka: remove %s: %w", k.dir, err)
	}
	return nil
}

func (k *Kafka) writeNodeConfig(n *kafkaNode) error {
	if err := os.MkdirAll(filepath.Join(n.dir, "data"), 0o755); err != nil {
		return fmt.Errorf("kafka: make node dir: %w", err)
	}
	nb := len(k.nodes)
	var voters []string
	for _, o := range k.nodes {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", o.id, o.ctrlPort))
	}
	rf := min(3, nb)
	minISR := 1
	if nb >= 3 {
		minISR = 2
	}
	props := map[string]string{
		"process.roles":                                    "broker,controller",
		"node.id":                                          strconv.Itoa(int(n.id)),
		"controller.quorum.voters":                         strings.Join(voters, ","),
		"listeners":                                        fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", n.port, n.ctrlPort),
		"advertised.listeners":                             fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", n.port),
		"controller.listener.names":                        "CONTROLLER",
		"inter.broker.listener.name":                       "PLAINTEXT",
		"listener.security.protocol.map":                   "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs":                                         filepath.Join(n.dir, "data"),
		"auto.create.topics.enable":                        "true",
		"num.partitions":                                   "3",
		"default.replication.factor":                       strconv.Itoa(rf),
		"min.insync.replicas":                              strconv.Itoa(minISR),
		"offsets.topic.replication.factor":                 strconv.Itoa(rf),
		"offsets.topic.num.partitions":                     "10", // 50 by default: slow to create
		"transaction.state.log.replication.factor":         strconv.Itoa(rf),
		"transaction.state.log.min.isr":                    strconv.Itoa(minISR),
		"transaction.state.log.num.partitions":             "4",
		"share.coordinator.state.topic.replication.factor": strconv.Itoa(rf),
		"share.coordinator.state.topic.min.isr":            strconv.Itoa(minISR),
		"group.initial.rebalance.delay.ms":                 "0",       // first consumer starts at once
		"log.segment.bytes":                                "1048576", // the minimum; tests roll segments
		// Keep every record: test workloads carry fixed event dates, and the
		// default 7-day time retention deleted their rolled segments once
		// those dates were a week old (a processor's watermark was then out
		// of range).
		"log.retention.ms":                  "-1",
		"log.cleaner.dedupe.buffer.size":    "8388608", // 128 MiB of heap by default
		"log.cleaner.threads":               "1",
		"num.network.threads":               "2",
		"num.io.threads":                    "4",
		"num.recovery.threads.per.data.dir": "1",
		"num.replica.fetchers":              "1",
		"background.threads":                "4",
		// Heartbeat faster so a (re)started broker is unfenced sooner; a killed
		// one is fenced (and loses its leaderships) after the session timeout.
		"broker.heartbeat.interval.ms":          "500",
		"broker.session.timeout.ms":             "6000",
		"controller.quorum.election.timeout.ms": "1000",
		"controlled.shutdown.enable":            "true",
		"unclean.leader.election.enable":        "false",
	}
	for j, l := range k.cfg.Listeners {
		props["listeners"] += fmt.Sprintf(",%s://127.0.0.1:%d", l.Name, n.extra[j])
		props["advertised.listeners"] += fmt.Sprintf(",%s://127.0.0.1:%d", l.Name, n.extra[j])
		props["listener.security.protocol.map"] += fmt.Sprintf(",%s:%s", l.Name, l.Protocol)
	}
	for key, v := range k.cfg.ExtraProps {
		props[key] = v
	}
	keys := make([]string, 0, len(props))
	for key := range props {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# written by taillight (internal/devenv/kafka.go)\n")
	for _, key := range keys {
		fmt.Fprintf(&b, "%s=%s\n", key, props[key])
	}
	if err := os.WriteFile(n.props, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("kafka: write %s: %w", n.props, err)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "log4j2.properties"), []byte(kafkaLog4j), 0o644); err != nil {
		return fmt.Errorf("kafka: write log4j2.properties: %w", err)
	}
	return nil
}

// kafkaLog4j sends the broker's log to stdout, which launch appends to
// server.log; INFO so a failed start explains itself, with the chatty loggers
// turned down.
const kafkaLog4j = `status = warn
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.log.name = org.apache.kafka.storage.internals.log
logger.log.level = WARN
logger.ulog.name = kafka.log.UnifiedLog
logger.ulog.level = WARN
`

// format writes each node's KRaft storage: meta.properties and the bootstrap
// metadata checkpoint. kafka.tools.StorageTool writes them; as its JVM takes a
// few seconds, it runs once per Kafka version and the checkpoint it wrote (it
// holds only the feature levels, the same for every cluster) is cached next to
// the jars; every node then gets a copy plus its own meta.properties.
func (k *Kafka) format(ctx context.Context, jars string) error {
	cached := filepath.Join(jars, ".bootstrap.checkpoint")
	boot, err := os.ReadFile(cached)
	if err != nil {
		n := k.nodes[0]
		if err := k.runStorageTool(ctx, n); err != nil {
			return err
		}
		boot, err = os.ReadFile(filepath.Join(n.dir, "data", "bootstrap.checkpoint"))
		if err != nil {
			return fmt.Errorf("kafka: storage format wrote no bootstrap.checkpoint: %w", err)
		}
		// Best effort: a read-only jars dir only costs the next start a format.
		tmp := fmt.Sprintf("%s.%d.tmp", cached, os.Getpid())
		if os.WriteFile(tmp, boot, 0o644) == nil {
			_ = os.Rename(tmp, cached)
		}
	}
	for _, n := range k.nodes {
		data := filepath.Join(n.dir, "data")
		if _, err := os.Stat(filepath.Join(data, "meta.properties")); err == nil {
			continue // formatted by the storage tool above
		}
		if err := os.WriteFile(filepath.Join(data, "bootstrap.checkpoint"), boot, 0o644); err != nil {
			return fmt.Errorf("kafka: format node %d: %w", n.id, err)
		}
		meta := fmt.Sprintf("#written by taillight internal/devenv, as kafka-storage format does\nnode.id=%d\ndirectory.id=%s\nversion=1\ncluster.id=%s\n",
			n.id, randomKafkaID(), k.clusterID)
		if err := os.WriteFile(filepath.Join(data, "meta.properties"), []byte(meta), 0o644); err != nil {
			return fmt.Errorf("kafka: format node %d: %w", n.id, err)
		}
	}
	return nil
}

func (k *Kafka) runStorageTool(ctx context.Context, n *kafkaNode) error {
	// Not StartTimeout: that bounds waiting for brokers, and this is one JVM run.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args := append(k.jvmArgs(n), "kafka.tools.StorageTool", "format", "--cluster-id", k.clusterID, "--config", n.props)
	cmd := exec.CommandContext(ctx, k.java, args...)
	cmd.SysProcAttr = ProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kafka: format storage of node %d (java kafka.tools.StorageTool format): %w\n%s", n.id, err, kafkaTail(out, 20))
	}
	return nil
}

func (k *Kafka) jvmArgs(n *kafkaNode) []string {
	args := append([]string(nil), k.cfg.JVMOpts...)
	return append(args,
		"-Dlog4j2.configurationFile="+filepath.Join(n.dir, "log4j2.properties"),
		"-Dkafka.logs.dir="+n.dir,
		"-cp", k.classpath)
}

// launch starts node n's JVM in its own process group (so a signal reaches
// every thread and child) that dies with this process (Pdeathsig), so a test
// binary killed by its timeout leaves no broker behind.
func (k *Kafka) launch(n *kafkaNode) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return errors.New("kafka: cluster is closed")
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("kafka: open node %d log: %w", n.id, err)
	}
	defer logf.Close() // the child has its own descriptor
	fmt.Fprintf(logf, "=== taillight: starting node %d at %s ===\n", n.id, time.Now().UTC().Format(time.RFC3339Nano))
	args := append(k.cdsArgs(n), k.jvmArgs(n)...)
	args = append(args, "kafka.Kafka", n.props)
	cmd := exec.Command(k.java, args...)
	cmd.Dir = n.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = ProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kafka: start node %d (%s): %w", n.id, k.java, err)
	}
	p := &kafkaProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	n.proc = p
	return nil
}

// cdsArgs returns the JVM options for class-data sharing: a dynamic archive of
// the broker's classes cuts a JVM's start roughly in half on a busy machine. The
// first broker started without an archive writes one when it exits normally
// (StopBroker without kill, or Close); later starts map it. A JVM that cannot
// use the archive (another Java build) ignores it. Called with k.mu held.
func (k *Kafka) cdsArgs(n *kafkaNode) []string {
	if k.cds == "" {
		return nil
	}
	if _, err := os.Stat(k.cds); err == nil {
		return []string{"-XX:SharedArchiveFile=" + k.cds, "-Xlog:cds=off", "-Xlog:cds+dynamic=off"}
	}
	if k.cdsNode != nil {
		return nil
	}
	k.cdsNode = n
	k.cdsTmp = fmt.Sprintf("%s.%d-%s.tmp", k.cds, os.Getpid(), randomKafkaID())
	return []string{"-XX:ArchiveClassesAtExit=" + k.cdsTmp, "-Xlog:cds=off", "-Xlog:cds+dynamic=off"}
}

// finishCDS moves the archive node n dumped at exit into place, if the JVM
// exited by itself (one killed mid-dump may have left half a file).
func (k *Kafka) finishCDS(n *kafkaNode, clean bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cdsNode != n {
		return
	}
	k.cdsNode = nil
	ready := k.cdsReady && clean
	k.cdsReady = false
	if st, err := os.Stat(k.cdsTmp); err == nil && st.Size() > 0 && ready {
		if err := os.Rename(k.cdsTmp, k.cds); err == nil {
			k.log.Info("kafka class-data archive written; later starts are faster", "path", k.cds)
			return
		}
	}
	_ = os.Remove(k.cdsTmp)
}

// kafkaCDSArchive names the class-data archive for this java and these jars:
// next to the jars, keyed by the JVM binary so another Java gets its own.
func kafkaCDSArchive(java, jars string) string {
	real, err := filepath.EvalSymlinks(java)
	if err != nil {
		return ""
	}
	st, err := os.Stat(real)
	if err != nil {
		return ""
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%d|%d", real, st.Size(), st.ModTime().UnixNano())
	return filepath.Join(jars, fmt.Sprintf(".kafka-cds-%x.jsa", h.Sum64()))
}

func (p *kafkaProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *kafkaProc) signal(sig syscall.Signal) {
	if p.exited() {
		return
	}
	// The JVM leads its own group; signal the group so nothing it spawned lingers.
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// waitReady polls each node with a Metadata request until it answers and lists
// every node of the cluster (a broker only serves requests once the controller
// has unfenced it), or ctx ends, or the node's process exits.
func (k *Kafka) waitReady(ctx context.Context, nodes ...*kafkaNode) error {
	t0 := time.Now()
	pending := append([]*kafkaNode(nil), nodes...)
	var lastErr = make(map[int32]error)
	for {
		next := pending[:0]
		for _, n := range pending {
			k.mu.Lock()
			p := n.proc
			k.mu.Unlock()
			if p == nil {
				return fmt.Errorf("kafka: node %d was stopped while starting", n.id)
			}
			if p.exited() {
				return k.nodeError(n, fmt.Errorf("exited while starting (%v)", p.err))
			}
			err := k.probe(ctx, n)
			if err != nil {
				lastErr[n.id] = err
				next = append(next, n)
				continue
			}
			k.mu.Lock()
			if k.cdsNode == n {
				k.cdsReady = true
			}
			k.mu.Unlock()
		}
		pending = next
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			n := pending[0]
			return k.nodeError(n, fmt.Errorf("not ready after %s (%v; last probe: %v)", time.Since(t0).Round(time.Millisecond), ctx.Err(), lastErr[n.id]))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (k *Kafka) probe(ctx context.Context, n *kafkaNode) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port))
	// A plain dial first: cheap, and kgo would otherwise log-retry a refused port.
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(rctx, cl)
	if err != nil {
		return err
	}
	if len(resp.Brokers) != len(k.nodes) {
		return fmt.Errorf("metadata lists %d of %d brokers", len(resp.Brokers), len(k.nodes))
	}
	return nil
}

// nodeError names the node, says what to do for the failures we recognise,
// and appends the tail of the node's log.
func (k *Kafka) nodeError(n *kafkaNode, err error) error {
	// The cause is often far above the end (a broker that failed to bind logs
	// retries for a while), so search a large tail and show a short one.
	big, _ := kafkaReadTail(n.logPath, 5000)
	switch {
	case bytes.Contains(big, []byte("Address already in use")) || bytes.Contains(big, []byte("BindException")):
		err = fmt.Errorf("%w: 127.0.0.1:%d or :%d is used by another process: %v", ErrKafkaPortTaken, n.port, n.ctrlPort, err)
	case bytes.Contains(big, []byte("UnsupportedClassVersionError")):
		err = fmt.Errorf("%w: Kafka %s needs Java 17 or newer (java is %s): %v", ErrKafkaNotInstalled, KafkaVersion, k.java, err)
	case bytes.Contains(big, []byte("ClassNotFoundException")) || bytes.Contains(big, []byte("NoClassDefFoundError")):
		err = fmt.Errorf("%w: the jars in %s are incomplete; run deployments/local/install-kafka.sh --force: %v", ErrKafkaNotInstalled, filepath.Dir(k.classpath), err)
	}
	var cause []byte
	for _, line := range bytes.Split(big, []byte("\n")) {
		if len(cause) == 0 && (bytes.Contains(line, []byte("] ERROR ")) || bytes.Contains(line, []byte("Exception"))) {
			cause = line
		}
	}
	if len(cause) > 0 {
		err = fmt.Errorf("%w\nfirst error in the log: %s", err, cause)
	}
	return fmt.Errorf("kafka: node %d (127.0.0.1:%d, log %s): %w\n--- last lines of %s ---\n%s",
		n.id, n.port, n.logPath, err, filepath.Base(n.logPath), kafkaTail(big, 30))
}

// KafkaInstalled reports what StartKafka would find missing, wrapping
// ErrKafkaNotInstalled: java, or the jars in jarsDir ("" = KafkaJarsDir()).
func KafkaInstalled(jarsDir string) error {
	_, errJava := kafkaFindJava("")
	_, errJars := findKafkaJars(jarsDir)
	return errors.Join(errJava, errJars)
}

func kafkaFindJava(java string) (string, error) {
	if java == "" {
		if h := os.Getenv("JAVA_HOME"); h != "" {
			if p := filepath.Join(h, "bin", "java"); kafkaIsExecutable(p) {
				java = p
			}
		}
	}
	if java == "" {
		java = "java"
	}
	p, err := exec.LookPath(java)
	if err != nil {
		return "", fmt.Errorf("%w: %s not found (%v): Kafka %s needs Java 17+; on Debian: apt-get install -y openjdk-17-jre-headless",
			ErrKafkaNotInstalled, java, err, KafkaVersion)
	}
	return p, nil
}

func kafkaIsExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// KafkaJarsDir returns where install-kafka.sh puts the jars of KafkaVersion:
// deployments/local/.kafka-jars/<version> in the checkout CheckoutDir finds.
// It returns "" when there is none.
func KafkaJarsDir() string {
	root := CheckoutDir()
	if root == "" {
		return ""
	}
	return filepath.Join(root, "deployments", "local", ".kafka-jars", KafkaVersion)
}

// CheckoutDir returns the root of the taillight checkout this process runs
// in: the first directory holding deployments/local/install.sh, walking up
// from the working directory and then from this source file. It returns ""
// outside a checkout (a released binary).
func CheckoutDir() string {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, d := range starts {
		for {
			if _, err := os.Stat(filepath.Join(d, "deployments", "local", "install.sh")); err == nil {
				return d
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return ""
}

func findKafkaJars(dir string) (string, error) {
	if dir == "" {
		dir = KafkaJarsDir()
		if dir == "" {
			return "", fmt.Errorf("%w: cannot find the repository's deployments/local (set KafkaConfig.JarsDir)", ErrKafkaNotInstalled)
		}
	}
	want := filepath.Join(dir, "kafka_2.13-"+KafkaVersion+".jar")
	if _, err := os.Stat(want); err != nil {
		return "", fmt.Errorf("%w: no Kafka %s jars in %s: run deployments/local/install-kafka.sh (needs mvn and Maven Central once)",
			ErrKafkaNotInstalled, KafkaVersion, dir)
	}
	return dir, nil
}

// kafkaPickPorts picks the ports of a new cluster; tests replace it.
var kafkaPickPorts = kafkaFreePorts

// kafkaFreePorts returns n distinct loopback ports that were free a moment ago.
func kafkaFreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func kafkaPortFree(p int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return fmt.Errorf("%w: 127.0.0.1:%d: %v", ErrKafkaPortTaken, p, err)
	}
	return l.Close()
}

// randomKafkaID returns a random UUID in Kafka's base64url form (cluster and
// directory ids).
func randomKafkaID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func kafkaReadTail(path string, lines int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const max = 256 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, io.SeekStart)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return kafkaTail(b, lines), nil
}

func kafkaTail(b []byte, lines int) []byte {
	var all [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		all = append(all, append([]byte(nil), sc.Bytes()...))
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return bytes.Join(all, []byte("\n"))
}
