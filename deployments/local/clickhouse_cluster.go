package local

import (
	"encoding/xml"
	"fmt"
	"net"
	"strings"
)

// ClickHouseCluster describes one server's place in a ClickHouse cluster,
// rendered by ClickHouseClusterXML into ClickHouseConfig.ExtraConfig.
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

// FreePort returns a loopback TCP port that was free a moment ago, for
// configurations that must name a port before its server starts (cluster
// members naming each other).
func FreePort() (int, error) { return clickHouseFreePort() }
