package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/taillight/taillight/internal/devenv"
	"github.com/taillight/taillight/internal/testenv"
	"github.com/taillight/taillight/kafkaclient"
	"github.com/taillight/taillight/processor"
	"github.com/taillight/taillight/producer"
	"github.com/taillight/taillight/sinks/chsink"
	"github.com/taillight/taillight/sinks/memsink"
)

// Passwords planted to check that none reaches an error, a log line or stderr.
const (
	alicePW = "alice-PLAIN-planted-secret-7f3a"
	bobPW   = "bob-SCRAM256-planted-secret-91c2"
	carolPW = "carol-SCRAM512-planted-secret-d40e"
	wrongPW = "wrong-planted-secret-55aa"
)

// testPKI is a CA made for one test, a broker certificate for 127.0.0.1 and
// kafka.test, and a client certificate, all as PEM files.
type testPKI struct {
	caFile, serverFile, clientCert, clientKey string
}

func newTestPKI(t *testing.T, dir string) testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name string, blocks ...*pem.Block) string {
		var b bytes.Buffer
		for _, bl := range blocks {
			if err := pem.Encode(&b, bl); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyBlock := func(k *ecdsa.PrivateKey) *pem.Block {
		der, err := x509.MarshalPKCS8PrivateKey(k) // Kafka's PEM store wants PKCS#8
		if err != nil {
			t.Fatal(err)
		}
		return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "taillight test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, k *ecdsa.PrivateKey) []byte {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"kafka.test", "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	srvKey, cliKey := key(), key()
	return testPKI{
		caFile: write("ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		serverFile: write("server.pem", keyBlock(srvKey),
			&pem.Block{Type: "CERTIFICATE", Bytes: leaf(2, "kafka.test", x509.ExtKeyUsageServerAuth, srvKey)},
			&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		clientCert: write("client.pem", &pem.Block{Type: "CERTIFICATE", Bytes: leaf(3, "taillight-client", x509.ExtKeyUsageClientAuth, cliKey)}),
		clientKey:  write("client-key.pem", keyBlock(cliKey)),
	}
}

// secureKafka starts one broker with, besides its PLAINTEXT listener, SASL
// (SASL_PLAINTEXT), SASLSSL (SASL_SSL) and MTLS (SSL, client certificate
// required), PLAIN user alice and SCRAM users bob (SHA-256) and carol (SHA-512).
func secureKafka(t *testing.T, pki testPKI) *devenv.Kafka {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real Kafka with TLS and SASL listeners; skipped under -short")
	}
	scramJAAS := "org.apache.kafka.common.security.scram.ScramLoginModule required;"
	plainJAAS := `org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="` + alicePW + `";`
	props := map[string]string{
		"sasl.enabled.mechanisms":               "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		"ssl.keystore.type":                     "PEM",
		"ssl.keystore.location":                 pki.serverFile,
		"ssl.truststore.type":                   "PEM",
		"ssl.truststore.location":               pki.caFile,
		"listener.name.mtls.ssl.client.auth":    "required",
		"ssl.endpoint.identification.algorithm": "",
	}
	for _, l := range []string{"sasl", "saslssl"} {
		props["listener.name."+l+".plain.sasl.jaas.config"] = plainJAAS
		props["listener.name."+l+".scram-sha-256.sasl.jaas.config"] = scramJAAS
		props["listener.name."+l+".scram-sha-512.sasl.jaas.config"] = scramJAAS
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	k, err := devenv.StartKafka(ctx, devenv.KafkaConfig{
		Log:        harnessLog(),
		ExtraProps: props,
		Listeners: []devenv.KafkaListener{
			{Name: "SASL", Protocol: "SASL_PLAINTEXT"},
			{Name: "SASLSSL", Protocol: "SASL_SSL"},
			{Name: "MTLS", Protocol: "SSL"},
		},
	})
	if err != nil {
		failOrSkip(t, err)
	}
	t.Cleanup(func() { _ = k.Close() })

	// SCRAM credentials live in the cluster metadata; the unauthenticated
	// PLAINTEXT listener (no authorizer) is the admin's way in.
	adm := kadm.NewClient(NewKafkaClient(t, k.Brokers()))
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: bobPW},
		{User: "carol", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: carolPW},
	})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("create SCRAM users: %v", err)
	}
	return k
}

// TestKafkaTLSAndSASL publishes through producer.Publisher and consumes
// through the processor, each configured only by kafkaclient.Auth, over every
// mechanism and listener; wrong credentials fail fast without the password
// in the error.
func TestKafkaTLSAndSASL(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	k := secureKafka(t, pki)
	pwFile := filepath.Join(dir, "bob.pw")
	if err := os.WriteFile(pwFile, []byte(bobPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		listener string
		auth     kafkaclient.Auth
	}{
		{"PLAIN", "SASL", kafkaclient.Auth{SASLMechanism: "PLAIN", SASLUser: "alice", SASLPassword: alicePW}},
		{"SCRAM-SHA-256 password file", "SASL", kafkaclient.Auth{SASLMechanism: "SCRAM-SHA-256", SASLUser: "bob", SASLPasswordFile: pwFile}},
		{"SCRAM-SHA-512 over TLS", "SASLSSL", kafkaclient.Auth{TLS: true, CAFile: pki.caFile,
			SASLMechanism: "SCRAM-SHA-512", SASLUser: "carol", SASLPassword: carolPW}},
		{"PLAIN over TLS with server name", "SASLSSL", kafkaclient.Auth{TLS: true, CAFile: pki.caFile, ServerName: "kafka.test",
			SASLMechanism: "PLAIN", SASLUser: "alice", SASLPassword: alicePW}},
		{"mutual TLS", "MTLS", kafkaclient.Auth{TLS: true, CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roundTrip(t, k, k.ListenerBrokers(tc.listener), tc.auth)
		})
	}

	for _, tc := range []struct {
		name     string
		listener string
		auth     kafkaclient.Auth
		want     string // in the error, case-insensitive
	}{
		{"PLAIN wrong password", "SASL", kafkaclient.Auth{SASLMechanism: "PLAIN", SASLUser: "alice", SASLPassword: wrongPW}, "authentication"},
		{"SCRAM-SHA-256 wrong password", "SASL", kafkaclient.Auth{SASLMechanism: "SCRAM-SHA-256", SASLUser: "bob", SASLPassword: wrongPW}, "authentication"},
		{"SCRAM-SHA-512 unknown user", "SASLSSL", kafkaclient.Auth{TLS: true, CAFile: pki.caFile,
			SASLMechanism: "SCRAM-SHA-512", SASLUser: "mallory", SASLPassword: wrongPW}, "authentication"},
		{"TLS untrusted CA", "SASLSSL", kafkaclient.Auth{TLS: true,
			SASLMechanism: "SCRAM-SHA-512", SASLUser: "carol", SASLPassword: carolPW}, "certificate"},
		{"TLS wrong server name", "MTLS", kafkaclient.Auth{TLS: true, CAFile: pki.caFile, ServerName: "evil.test",
			CertFile: pki.clientCert, KeyFile: pki.clientKey}, "certificate"},
		{"mutual TLS without client certificate", "MTLS", kafkaclient.Auth{TLS: true, CAFile: pki.caFile}, ""},
		{"SASL listener without SASL", "SASL", kafkaclient.Auth{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := producer.DefaultConfig()
			cfg.Kafka.Brokers, cfg.Kafka.Auth = k.ListenerBrokers(tc.listener), tc.auth
			cfg.DialTimeout = 2 * time.Second
			pub, err := producer.New(cfg, harnessLog(), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			t0 := time.Now()
			err = pub.Ping(ctx)
			took := time.Since(t0)
			if err == nil {
				t.Fatal("Ping succeeded; want an error")
			}
			if ctx.Err() != nil {
				t.Fatalf("no clear error before the 20s deadline (took %s): %v", took, err)
			}
			msg := err.Error()
			if tc.want != "" && !strings.Contains(strings.ToLower(msg), tc.want) {
				t.Fatalf("error %q does not mention %q", msg, tc.want)
			}
			for _, pw := range []string{wrongPW, alicePW, bobPW, carolPW} {
				if strings.Contains(msg, pw) {
					t.Fatalf("error holds a password: %q", msg)
				}
			}
			t.Logf("failed in %s: %v", took.Round(time.Millisecond), err)
		})
	}
}

// roundTrip publishes generated items to a new topic over brokers with auth
// and runs a processor with the same auth until the sink holds them all.
func roundTrip(t *testing.T, k *devenv.Kafka, brokers []string, auth kafkaclient.Auth) {
	t.Helper()
	const n = 200
	topic := TopicName(t)
	CreateTopic(t, k.Brokers(), topic, 2, 1)
	CreateTopic(t, k.Brokers(), topic+".dlq", 1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cfg := producer.DefaultConfig()
	cfg.Kafka.Brokers, cfg.Kafka.Auth, cfg.Topic = brokers, auth, topic
	pub, err := producer.New(cfg, harnessLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	gen, err := producer.NewGenerator(producer.GenConfig{Seed: 8, Start: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	items := make([]producer.RawItem, n)
	for i := range items {
		v, _ := gen.Next(nil)
		items[i] = producer.RawItem{Value: v}
	}
	if err := pub.PublishRaw(ctx, items...); err != nil {
		t.Fatalf("publish %d items: %v", n, err)
	}

	sink := memsink.New()
	pc := processor.DefaultConfig()
	pc.Kafka.Brokers, pc.Kafka.Auth, pc.Topic, pc.Group = brokers, auth, topic, "sec-"+topic
	pc.Linger, pc.SessionTimeout = 100*time.Millisecond, 6*time.Second
	p, err := processor.New(pc, sink, harnessLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("processor: %v", err)
		}
	}()
	for sink.RowCount() < n {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("processor stopped with %d of %d rows: %v", sink.RowCount(), n, err)
		case <-ctx.Done():
			t.Fatalf("only %d of %d rows consumed before the deadline", sink.RowCount(), n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if got := sink.RowCount(); got != n {
		t.Fatalf("sink holds %d rows; want %d", got, n)
	}
}

// TestKafkaSecretsNotLogged runs `taillight generate` with SASL credentials
// from the environment, with a wrong and the right password at debug level:
// neither run prints the password, and the wrong one fails in bounded time.
func TestKafkaSecretsNotLogged(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	k := secureKafka(t, pki)
	bin := taillightBinary(t)
	topic := TopicName(t)
	CreateTopic(t, k.Brokers(), topic, 1, 1)
	run := func(password string, wantOK bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "generate", "-n", "50", "-log.level", "debug",
			"-kafka.brokers", strings.Join(k.ListenerBrokers("SASLSSL"), ","), "-kafka.topic", topic,
			"-kafka.delivery-timeout", "15s", "-kafka.dial-timeout", "2s",
			"-kafka.tls", "-kafka.tls.ca-file", pki.caFile,
			"-kafka.sasl.mechanism", "SCRAM-SHA-512", "-kafka.sasl.user", "carol")
		cmd.Env = append(os.Environ(), "TAILLIGHT_KAFKA_SASL_PASSWORD="+password)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		t0 := time.Now()
		err := cmd.Run()
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		t.Logf("generate (password ok=%v) exited after %s: %v; last line: %s", wantOK, time.Since(t0).Round(time.Millisecond), err, lines[len(lines)-1])
		if ctx.Err() != nil {
			t.Fatalf("generate did not finish in 90s:\n%s", out.String())
		}
		if (err == nil) != wantOK {
			t.Fatalf("generate with password ok=%v: err = %v\n%s", wantOK, err, out.String())
		}
		if strings.Contains(out.String(), password) {
			t.Fatalf("output holds the password:\n%s", out.String())
		}
		if !wantOK && !strings.Contains(strings.ToLower(out.String()), "authentication") {
			t.Fatalf("failure output does not say authentication failed:\n%s", out.String())
		}
	}
	run(wrongPW, false)
	run(carolPW, true)
}

// freePort returns a loopback port free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestClickHouseTLSAndPassword starts a private ClickHouse with a native
// TLS port (certificate from a CA made here, through config.d) and a user
// with a password (users.d), and connects chsink.New with -clickhouse.tls*
// and user/password settings: migrate and query work; a wrong password, an
// untrusted CA and TLS against the plaintext port fail without the password in
// the error.
func TestClickHouseTLSAndPassword(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real ClickHouse with a TLS port; skipped under -short")
	}
	const chPW = "clickhouse-planted-secret-3b9d"
	dir := t.TempDir()
	pki := newTestPKI(t, t.TempDir())
	// ClickHouse (OpenSSL) wants the certificate chain and key in files of their own.
	pemBlocks := func(path, typ string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for {
			var bl *pem.Block
			if bl, b = pem.Decode(b); bl == nil {
				return out
			}
			if bl.Type == typ {
				out = append(out, pem.EncodeToMemory(bl)...)
			}
		}
	}
	certFile, keyFile := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, pemBlocks(pki.serverFile, "CERTIFICATE"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pemBlocks(pki.serverFile, "PRIVATE KEY"), 0o600); err != nil {
		t.Fatal(err)
	}
	securePort := freePort(t)
	for name, body := range map[string]string{
		"config.d/tls.xml": `<?xml version="1.0"?>
<yandex>
    <tcp_port_secure>` + strconv.Itoa(securePort) + `</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>` + certFile + `</certificateFile>
            <privateKeyFile>` + keyFile + `</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
</yandex>
`,
		"users.d/writer.xml": `<?xml version="1.0"?>
<yandex>
    <users>
        <writer>
            <password_sha256_hex>` + sha256Hex(chPW) + `</password_sha256_hex>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </writer>
    </users>
</yandex>
`,
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ch, err := devenv.StartClickHouse(ctx, devenv.ClickHouseConfig{Dir: dir, Log: harnessLog()})
	if err != nil {
		failOrSkip(t, err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	secure := net.JoinHostPort("127.0.0.1", strconv.Itoa(securePort))

	cfg := func(addr string, mutate func(*chsink.Config)) chsink.Config {
		c := chsink.DefaultConfig()
		c.Addrs = []string{addr}
		c.Database = "sec_tls" // the server is this test's own
		c.User, c.Password = "writer", chPW
		c.TLS = chsink.TLSConfig{Enable: true, CAFile: pki.caFile}
		c.DialTimeout = 3 * time.Second
		if mutate != nil {
			mutate(&c)
		}
		return c
	}
	t.Run("TLS and password", func(t *testing.T) {
		w, err := chsink.New(ctx, cfg(secure, func(c *chsink.Config) { c.TLS.ServerName = "kafka.test" }), harnessLog(), prometheus.NewRegistry())
		if err != nil {
			t.Fatalf("chsink.New over TLS: %v", err)
		}
		defer w.Close()
		if _, err := w.Migrate(ctx); err != nil {
			t.Fatalf("migrate over TLS: %v", err)
		}
		if _, err := w.Watermark(ctx, "t", 0); err != nil {
			t.Fatalf("watermark over TLS: %v", err)
		}
	})
	for _, tc := range []struct {
		name   string
		addr   string
		mutate func(*chsink.Config)
		want   string
	}{
		{"wrong password", secure, func(c *chsink.Config) { c.Password = wrongPW }, "password"},
		{"no password", secure, func(c *chsink.Config) { c.Password = "" }, "password"},
		{"untrusted CA", secure, func(c *chsink.Config) { c.TLS.CAFile = "" }, "certificate"},
		{"wrong server name", secure, func(c *chsink.Config) { c.TLS.ServerName = "evil.test" }, "certificate"},
		{"TLS to the plaintext port", ch.Addr(), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg(tc.addr, tc.mutate)
			if err := c.Validate(); err != nil {
				t.Fatalf("config must be valid, to be refused by the server: %v", err)
			}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			w, err := chsink.New(cctx, c, harnessLog(), prometheus.NewRegistry())
			if err == nil {
				w.Close()
				t.Fatal("chsink.New succeeded; want an error")
			}
			if cctx.Err() != nil {
				t.Fatalf("no clear error within 30s: %v", err)
			}
			msg := err.Error()
			if tc.want != "" && !strings.Contains(strings.ToLower(msg), tc.want) {
				t.Fatalf("error %q does not mention %q", msg, tc.want)
			}
			if strings.Contains(msg, chPW) || strings.Contains(msg, wrongPW) {
				t.Fatalf("error holds a password: %q", msg)
			}
			t.Logf("refused: %v", err)
		})
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// syncBuffer is a bytes.Buffer safe for a subprocess writing and a test reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDaemonsSecretsNotLogged starts `taillight ingest` and `taillight
// process` with a wrong SASL password (from the environment) at debug level:
// each reports the authentication failure (ingest on /readyz, process in its
// log) within a bounded time, and neither prints the password, nor the
// ClickHouse password given to process.
func TestDaemonsSecretsNotLogged(t *testing.T) {
	const chPW = "ch-planted-secret-unused-0c1d"
	dir := t.TempDir()
	pki := newTestPKI(t, dir)
	k := secureKafka(t, pki)
	env := Start(t)
	bin := taillightBinary(t)
	brokers := strings.Join(k.ListenerBrokers("SASL"), ",")
	auth := []string{"-kafka.brokers", brokers, "-kafka.sasl.mechanism", "SCRAM-SHA-256", "-kafka.sasl.user", "bob", "-log.level", "debug"}

	start := func(chPassword string, args ...string) (*exec.Cmd, *syncBuffer) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "TAILLIGHT_KAFKA_SASL_PASSWORD="+wrongPW, "TAILLIGHT_CLICKHOUSE_PASSWORD="+chPassword)
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, out
	}
	waitFor := func(out *syncBuffer, what string, d time.Duration) {
		t.Helper()
		if !testenv.Poll(d, 50*time.Millisecond, func() bool { return strings.Contains(out.String(), what) }) {
			t.Fatalf("no %q in the output within %s:\n%s", what, d, out.String())
		}
	}
	stop := func(cmd *exec.Cmd, out *syncBuffer) {
		t.Helper()
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(45 * time.Second):
			t.Errorf("did not stop within 45s of SIGINT")
		}
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, "FAILED") || strings.Contains(l, "Wrong password") {
				t.Logf("%s", l)
				break
			}
		}
		for _, secret := range []string{wrongPW, chPW} {
			if strings.Contains(out.String(), secret) {
				t.Fatalf("output holds a planted password:\n%s", out.String())
			}
		}
	}

	t.Run("ingest", func(t *testing.T) {
		cmd, out := start("", append([]string{"ingest", "-listen", "127.0.0.1:" + strconv.Itoa(freePort(t)),
			"-ingest.token", "tok-not-secret-here"}, auth...)...)
		waitFor(out, "ingest listening", 60*time.Second)
		addr := regexpFind(t, out.String(), `addr=(127\.0\.0\.1:\d+)`)
		res, err := httpGet("http://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res, "503") || !strings.Contains(strings.ToLower(res), "authentication") || strings.Contains(res, wrongPW) {
			t.Fatalf("/readyz answered %q; want 503 naming the authentication failure, without the password", res)
		}
		stop(cmd, out)
	})
	t.Run("process", func(t *testing.T) {
		cmd, out := start(env.ClickHousePassword, append([]string{"process", "-kafka.topic", TopicName(t), "-listen.metrics", "127.0.0.1:0",
			"-clickhouse.addr", env.ClickHouseAddr, "-clickhouse.database", env.Database(t), "-clickhouse.user", env.ClickHouseUser,
			"-migrate"}, auth...)...)
		waitFor(out, "SASL_AUTHENTICATION_FAILED", 60*time.Second)
		stop(cmd, out)
	})
	t.Run("migrate wrong ClickHouse password", func(t *testing.T) {
		cmd, out := start(chPW, "migrate", "-clickhouse.addr", env.ClickHouseAddr, "-clickhouse.user", env.ClickHouseUser,
			"-clickhouse.database", env.Database(t), "-log.level", "debug")
		waitFor(out, "assword", 60*time.Second)
		stop(cmd, out)
		if cmd.ProcessState == nil || cmd.ProcessState.Success() {
			t.Fatalf("migrate with a wrong password did not fail:\n%s", out.String())
		}
	})
}

func regexpFind(t *testing.T, s, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %s in:\n%s", re, s)
	}
	return m[1]
}

// httpGet returns "<status code> <body>".
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return strconv.Itoa(res.StatusCode) + " " + string(b), err
}
