package chsink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/taillight/taillight/storage"
)

// Config is how to reach ClickHouse. Start from DefaultConfig; New calls
// Validate.
type Config struct {
	// Addrs are native-protocol host:port addresses (default
	// 127.0.0.1:9000), tried in order. The HTTP protocol is not supported:
	// clickhouse-go's HTTP batches do not work with ClickHouse 18.16.
	Addrs []string
	// Database holds the taillight tables (default "taillight").
	Database string
	// User and Password authenticate (default user "default", no password).
	User     string
	Password string
	// TLS settings; off by default.
	TLS TLSConfig
	// Compression is how blocks to and from ClickHouse are compressed
	// (default CompressionAuto).
	Compression Compression
	// DialTimeout bounds connecting (default 10s).
	DialTimeout time.Duration
	// ReadTimeout bounds waiting for a server reply (default 2m).
	ReadTimeout time.Duration
	// WriteTimeout bounds each write to a server that stopped reading
	// (default 30s; 0 none): a stalled server fails a send instead of
	// holding the processor's stream, and every partition behind it, for
	// ever.
	WriteTimeout time.Duration
	// MaxOpenConns caps the connection pool (default 32). A streaming
	// partition holds up to two: its filling block's open INSERT and the
	// previous block's, while that one closes; give at least twice the
	// partitions a processor may own.
	MaxOpenConns int
	// Cluster, when set, is the ClickHouse cluster (remote_servers) the
	// tables live on: Migrate creates them ON CLUSTER, as Replicated local
	// tables under Distributed ones, and Write sends each partition's blocks
	// to one shard's local tables, shard (partition % shards) in
	// system.clusters order, reaching that shard's replicas directly (see
	// README "Cluster mode"). Addrs is then only the server that Migrate
	// and the shard lookup talk to.
	Cluster string
	// SealGrace is how long after its commit a journal block is sealed into
	// rollup_minutes (default 5m). It must exceed the longest a commit
	// INSERT can take (ReadTimeout) plus the clock skew between processors:
	// a block is sealed only once no longer version of it can still land.
	SealGrace time.Duration
	// SealMaxBlocks caps the blocks one seal INSERT folds (default 2000);
	// a backlog is sealed over several calls.
	SealMaxBlocks int
}

// TLSConfig is the TLS part of Config.
type TLSConfig struct {
	Enable             bool
	CAFile             string // PEM bundle; system roots when empty
	ServerName         string // defaults to the host of the address
	InsecureSkipVerify bool
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Addrs:         []string{"127.0.0.1:9000"},
		Database:      "taillight",
		User:          "default",
		Compression:   CompressionAuto,
		DialTimeout:   10 * time.Second,
		ReadTimeout:   2 * time.Minute,
		WriteTimeout:  30 * time.Second,
		MaxOpenConns:  32,
		SealGrace:     5 * time.Minute,
		SealMaxBlocks: 2000,
	}
}

// RegisterFlags registers c's fields as flags named prefix+"addr" and so on
// (prefix "clickhouse." gives -clickhouse.addr), with c's current values as
// defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet, prefix string) {
	fs.Var((*addrList)(&c.Addrs), prefix+"addr", "ClickHouse native-protocol address host:port; comma-separated for several")
	fs.StringVar(&c.Database, prefix+"database", c.Database, "ClickHouse database holding the taillight tables")
	fs.StringVar(&c.User, prefix+"user", c.User, "ClickHouse user")
	fs.StringVar(&c.Password, prefix+"password", c.Password, "ClickHouse password")
	fs.BoolVar(&c.TLS.Enable, prefix+"tls", c.TLS.Enable, "connect to ClickHouse with TLS")
	fs.StringVar(&c.TLS.CAFile, prefix+"tls.ca-file", c.TLS.CAFile, "PEM file of CA certificates for ClickHouse TLS (default: system roots)")
	fs.StringVar(&c.TLS.ServerName, prefix+"tls.server-name", c.TLS.ServerName, "server name to verify in ClickHouse's certificate (default: the address's host)")
	fs.BoolVar(&c.TLS.InsecureSkipVerify, prefix+"tls.insecure-skip-verify", c.TLS.InsecureSkipVerify, "do not verify ClickHouse's certificate (testing only)")
	fs.Var(&c.Compression, prefix+"compression", "compression of blocks to and from ClickHouse: auto (lz4 unless every address is a loopback one), lz4 or none")
	fs.DurationVar(&c.DialTimeout, prefix+"dial-timeout", c.DialTimeout, "timeout for connecting to ClickHouse")
	fs.DurationVar(&c.ReadTimeout, prefix+"read-timeout", c.ReadTimeout, "timeout for a ClickHouse reply")
	fs.DurationVar(&c.WriteTimeout, prefix+"write-timeout", c.WriteTimeout, "timeout for each write to ClickHouse while it does not read (0: none)")
	fs.IntVar(&c.MaxOpenConns, prefix+"max-open-conns", c.MaxOpenConns, "maximum open ClickHouse connections (per shard in cluster mode)")
	fs.DurationVar(&c.SealGrace, prefix+"seal-grace", c.SealGrace, "seal a journal block into per-minute rows this long after its commit (more than read-timeout plus clock skew)")
	fs.IntVar(&c.SealMaxBlocks, prefix+"seal-max-blocks", c.SealMaxBlocks, "most journal blocks one seal INSERT folds")
	fs.StringVar(&c.Cluster, prefix+"cluster", c.Cluster, "ClickHouse cluster name: migrate ON CLUSTER with Replicated and Distributed tables, write each partition to one shard (default: a single server)")
}

// Compression is how blocks to and from ClickHouse are compressed.
type Compression string

const (
	// CompressionAuto is LZ4, except when every address is a loopback one
	// (localhost, 127.0.0.0/8, ::1): there the bytes never cross a wire,
	// and compressing them costs both ends CPU for nothing. ClickHouse's own
	// client and cluster connections choose the same way.
	CompressionAuto Compression = "auto"
	CompressionLZ4  Compression = "lz4"
	CompressionNone Compression = "none"
)

func (c *Compression) String() string { return string(*c) }

// Set takes auto, lz4 or none, and the boolean values of the flag's older
// form (true is lz4, false none).
func (c *Compression) Set(s string) error {
	v, err := parseCompression(s)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// parseCompression reads s as Set does; empty is auto.
func parseCompression(s string) (Compression, error) {
	switch v := Compression(strings.ToLower(strings.TrimSpace(s))); v {
	case "", CompressionAuto:
		return CompressionAuto, nil
	case CompressionLZ4, CompressionNone:
		return v, nil
	}
	if b, err := strconv.ParseBool(strings.TrimSpace(s)); err == nil {
		if b {
			return CompressionLZ4, nil
		}
		return CompressionNone, nil
	}
	return "", fmt.Errorf("compression %q is not auto, lz4 or none", s)
}

// lz4 reports whether connections to addrs compress with LZ4.
func (c Compression) lz4(addrs []string) bool {
	v, _ := parseCompression(string(c)) // Validate has refused the rest
	switch v {
	case CompressionLZ4:
		return true
	case CompressionNone:
		return false
	}
	for _, a := range addrs {
		if !loopback(a) {
			return true
		}
	}
	return false
}

// loopback reports whether host:port names this machine without a lookup.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// addrList is a comma-separated flag value.
type addrList []string

func (a *addrList) String() string { return strings.Join(*a, ",") }

func (a *addrList) Set(s string) error {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	*a = out
	return nil
}

// Validate reports the first thing wrong with c.
func (c *Config) Validate() error {
	if len(c.Addrs) == 0 {
		return errors.New("chsink: no ClickHouse address")
	}
	for _, a := range c.Addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return fmt.Errorf("chsink: address %q is not host:port", a)
		}
	}
	if !storage.ValidIdentifier(c.Database) {
		return fmt.Errorf("chsink: database %q must be a plain identifier (letters, digits, _)", c.Database)
	}
	if _, err := parseCompression(string(c.Compression)); err != nil {
		return fmt.Errorf("chsink: %w", err)
	}
	if c.WriteTimeout < 0 {
		return fmt.Errorf("chsink: write timeout (%s) must not be negative", c.WriteTimeout)
	}
	if c.DialTimeout <= 0 || c.ReadTimeout <= 0 {
		return fmt.Errorf("chsink: dial timeout (%s) and read timeout (%s) must be positive", c.DialTimeout, c.ReadTimeout)
	}
	if c.Cluster != "" && !storage.ValidIdentifier(c.Cluster) {
		return fmt.Errorf("chsink: cluster %q must be a plain identifier (letters, digits, _)", c.Cluster)
	}
	if c.SealGrace <= c.ReadTimeout {
		return fmt.Errorf("chsink: seal grace (%s) must exceed the read timeout (%s): a commit may land that late", c.SealGrace, c.ReadTimeout)
	}
	if c.SealMaxBlocks <= 0 {
		return fmt.Errorf("chsink: seal max blocks (%d) must be positive", c.SealMaxBlocks)
	}
	if c.MaxOpenConns <= 0 {
		return fmt.Errorf("chsink: max open conns (%d) must be positive", c.MaxOpenConns)
	}
	if !c.TLS.Enable && (c.TLS.CAFile != "" || c.TLS.InsecureSkipVerify || c.TLS.ServerName != "") {
		return errors.New("chsink: TLS options are set but TLS is not enabled")
	}
	return nil
}

// ClientOptions builds clickhouse-go options from c (also for other clients
// of the same server, such as dashboards); database "" means the user's
// default database. It reads the TLS CA file.
func (c *Config) ClientOptions(database string) (*clickhouse.Options, error) {
	o := &clickhouse.Options{
		Protocol:     clickhouse.Native,
		Addr:         c.Addrs,
		Auth:         clickhouse.Auth{Database: database, Username: c.User, Password: c.Password},
		DialTimeout:  c.DialTimeout,
		ReadTimeout:  c.ReadTimeout,
		MaxOpenConns: c.MaxOpenConns,
		// Each connection keeps the buffers of the largest packet it sent;
		// a processor uses a few at a time (the open row stream, a commit,
		// a seal), so the rest are closed when idle.
		MaxIdleConns: min(c.MaxOpenConns, maxIdleConns),
		ClientInfo: clickhouse.ClientInfo{Products: []struct{ Name, Version string }{
			{Name: "taillight", Version: "1"},
		}},
	}
	if c.Compression.lz4(c.Addrs) {
		o.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	if c.TLS.Enable {
		tc := &tls.Config{
			MinVersion:         tls.VersionTLS12,
			ServerName:         c.TLS.ServerName,
			InsecureSkipVerify: c.TLS.InsecureSkipVerify, //nolint:gosec // an explicit operator choice
		}
		if c.TLS.CAFile != "" {
			pem, err := os.ReadFile(c.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("chsink: read TLS CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("chsink: TLS CA file %s holds no PEM certificate", c.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		o.TLS = tc
	}
	if c.WriteTimeout > 0 {
		o.DialContext = deadlineDialer(c.DialTimeout, c.WriteTimeout, o.TLS)
	}
	return o, nil
}

const maxIdleConns = 8

// deadlineDialer dials like clickhouse-go does (TCP, then TLS when tc is
// set) and returns connections whose every Write must progress within
// write: clickhouse-go bounds reads (ReadTimeout) but not writes, and a
// server that stops reading would otherwise block a send for ever.
func deadlineDialer(dial, write time.Duration, tc *tls.Config) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: dial}
		raw, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		var conn net.Conn = &writeDeadlineConn{Conn: raw, timeout: write}
		if tc != nil {
			cfg := tc.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName, _, _ = net.SplitHostPort(addr)
			}
			tconn := tls.Client(conn, cfg)
			hctx, cancel := context.WithTimeout(ctx, dial)
			defer cancel()
			if err := tconn.HandshakeContext(hctx); err != nil {
				raw.Close()
				return nil, err
			}
			conn = tconn
		}
		return conn, nil
	}
}

// writeDeadlineConn sets a fresh write deadline before every Write.
type writeDeadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *writeDeadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
