package testenv

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/taillight/taillight/internal/devenv"
)

// ClickHouseCluster describes one server's place in a ClickHouse cluster,
// rendered by ClickHouseClusterXML into devenv.ClickHouseConfig.ExtraConfig.
type ClickHouseCluster struct {
	// Name is the cluster name (ON CLUSTER Name, remote_servers/Name).
	Name string
	// Shards lists, per shard, the native host:port of its replicas.
	// Every server of the cluster gets the same list, and finds itself in it
	// by its own tcp port.
	Shards [][]string
	// ZooKeeper lists host:port addresses of the ZooKeeper ensemble.
	ZooKeeper []string
	// Shard and Replica are this server's {shard} and {replica} macros.
	Shard, Replica string
	// InterserverPort is this server's interserver HTTP port, used by
	// replicas to fetch parts from each other (required by Replicated*
	// tables). 0 leaves it out.
	InterserverPort int
}

// ClickHouseClusterXML renders <remote_servers>, <zookeeper>, <macros>,
// <distributed_ddl> (for ON CLUSTER) and the interserver port, in
// ClickHouse 18.16's config format.
func ClickHouseClusterXML(c ClickHouseCluster) (string, error) {
	esc := func(s string) string {
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	if c.Name == "" || len(c.Shards) == 0 || len(c.ZooKeeper) == 0 || c.Shard == "" || c.Replica == "" {
		return "", fmt.Errorf("clickhouse cluster: name, shards, zookeeper, shard and replica are all required")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "    <remote_servers>\n        <%s>\n", esc(c.Name))
	for i, shard := range c.Shards {
		if len(shard) == 0 {
			return "", fmt.Errorf("clickhouse cluster: shard %d has no replica", i+1)
		}
		b.WriteString("            <shard>\n                <internal_replication>true</internal_replication>\n")
		for _, r := range shard {
			host, port, err := net.SplitHostPort(r)
			if err != nil {
				return "", fmt.Errorf("clickhouse cluster: replica %q: %w", r, err)
			}
			fmt.Fprintf(&b, "                <replica><host>%s</host><port>%s</port></replica>\n", esc(host), esc(port))
		}
		b.WriteString("            </shard>\n")
	}
	fmt.Fprintf(&b, "        </%s>\n    </remote_servers>\n", esc(c.Name))
	b.WriteString("    <zookeeper>\n")
	for i, z := range c.ZooKeeper {
		host, port, err := net.SplitHostPort(z)
		if err != nil {
			return "", fmt.Errorf("clickhouse cluster: zookeeper %q: %w", z, err)
		}
		fmt.Fprintf(&b, "        <node index=\"%d\"><host>%s</host><port>%s</port></node>\n", i+1, esc(host), esc(port))
	}
	b.WriteString("        <session_timeout_ms>30000</session_timeout_ms>\n    </zookeeper>\n")
	fmt.Fprintf(&b, "    <macros>\n        <shard>%s</shard>\n        <replica>%s</replica>\n    </macros>\n", esc(c.Shard), esc(c.Replica))
	b.WriteString("    <distributed_ddl>\n        <path>/clickhouse/task_queue/ddl</path>\n    </distributed_ddl>\n")
	if c.InterserverPort != 0 {
		fmt.Fprintf(&b, "    <interserver_http_host>127.0.0.1</interserver_http_host>\n    <interserver_http_port>%d</interserver_http_port>\n", c.InterserverPort)
	}
	return b.String(), nil
}

// ClickHouseClusterConfig configures StartClickHouseCluster.
type ClickHouseClusterConfig struct {
	// Name is the cluster name (default "taillight").
	Name string
	// Shards is the number of shards (default 2) and Replicas the number
	// of replicas of each (default 1).
	Shards, Replicas int
	// ZooKeeper and Server configure the ZooKeeper server and every
	// ClickHouse server; their ports and ExtraConfig are set here.
	ZooKeeper ZooKeeperConfig
	Server    devenv.ClickHouseConfig
}

// ClickHouseClusterServers is a running ZooKeeper and the ClickHouse servers
// of a cluster, shard by shard: with one replica per shard, shard i+1 is
// Servers[i] (macros shard "01", "02", …, replica "ch1", "ch2", …); with R
// replicas, replica j+1 of shard i+1 is Servers[i*R+j] (replica
// "ch<i+1>r<j+1>").
type ClickHouseClusterServers struct {
	Name      string
	ZooKeeper *ZooKeeper
	Servers   []*devenv.ClickHouse
}

// StartClickHouseCluster starts ZooKeeper and cfg.Shards ClickHouse
// servers on loopback forming cluster cfg.Name (remote_servers, macros,
// distributed DDL). The servers' ports are chosen before any starts, since
// each names all of them. Close stops everything.
func StartClickHouseCluster(ctx context.Context, cfg ClickHouseClusterConfig) (*ClickHouseClusterServers, error) {
	if cfg.Name == "" {
		cfg.Name = "taillight"
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 2
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Server.TCPPort != 0 || cfg.Server.HTTPPort != 0 || cfg.Server.Dir != "" || cfg.Server.ExtraConfig != "" {
		return nil, fmt.Errorf("start clickhouse cluster: Server's ports, Dir and ExtraConfig are chosen per server; leave them empty")
	}
	zk, err := StartZooKeeper(ctx, cfg.ZooKeeper)
	if err != nil {
		return nil, err
	}
	c := &ClickHouseClusterServers{Name: cfg.Name, ZooKeeper: zk}
	seen := map[int]bool{}
	port := func() (int, error) {
		for {
			p, err := devenv.FreePort()
			if err != nil || !seen[p] {
				seen[p] = true
				return p, err
			}
		}
	}
	type ports struct{ tcp, http, inter int }
	ps := make([]ports, cfg.Shards*cfg.Replicas)
	shards := make([][]string, cfg.Shards)
	for i := range ps {
		for _, p := range []*int{&ps[i].tcp, &ps[i].http, &ps[i].inter} {
			if *p, err = port(); err != nil {
				_ = c.Close()
				return nil, fmt.Errorf("start clickhouse cluster: choose port: %w", err)
			}
		}
		shard := i / cfg.Replicas
		shards[shard] = append(shards[shard], net.JoinHostPort("127.0.0.1", strconv.Itoa(ps[i].tcp)))
	}
	for i, p := range ps {
		replica := fmt.Sprintf("ch%d", i+1)
		if cfg.Replicas > 1 {
			replica = fmt.Sprintf("ch%dr%d", i/cfg.Replicas+1, i%cfg.Replicas+1)
		}
		extra, err := ClickHouseClusterXML(ClickHouseCluster{
			Name: cfg.Name, Shards: shards, ZooKeeper: []string{zk.Addr()},
			Shard: fmt.Sprintf("%02d", i/cfg.Replicas+1), Replica: replica, InterserverPort: p.inter,
		})
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		sc := cfg.Server
		sc.TCPPort, sc.HTTPPort, sc.ExtraConfig = p.tcp, p.http, extra
		srv, err := devenv.StartClickHouse(ctx, sc)
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("start clickhouse cluster server %d: %w", i+1, err)
		}
		c.Servers = append(c.Servers, srv)
	}
	return c, nil
}

// Addrs are the servers' native addresses, shard by shard.
func (c *ClickHouseClusterServers) Addrs() []string {
	out := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		out[i] = s.Addr()
	}
	return out
}

// ErrorLogs returns, per server, the <Error> lines of its server.err.log
// that are not crash-report lines (the last n), to explain a failure.
func (c *ClickHouseClusterServers) ErrorLogs(n int) []string {
	out := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		b, _ := os.ReadFile(filepath.Join(s.Dir(), "log", "server.err.log"))
		var errs []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "<Error>") && !strings.Contains(l, "BaseDaemon: ") {
				errs = append(errs, l)
			}
		}
		out[i] = strings.Join(errs[max(0, len(errs)-n):], "\n")
	}
	return out
}

// Close stops the servers, then ZooKeeper, and removes their directories.
func (c *ClickHouseClusterServers) Close() error {
	var errs []error
	for _, s := range c.Servers {
		errs = append(errs, s.Close())
	}
	errs = append(errs, c.ZooKeeper.Close())
	return errors.Join(errs...)
}
