package chsink

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// shard is one shard of the cluster: a connection pool over its replicas.
type shard struct {
	num       uint32
	addrs     []string
	conn      driver.Conn
	insert    clickhouse.Settings // nil, or a write quorum over the replicas
	watermark clickhouse.Settings // nil, or reads that see every quorum write
}

// openShards reads the cluster's shards from system.clusters on conn and
// connects to each shard's replicas (host_name:port as the cluster config
// names them, so they must be reachable from here).
func openShards(ctx context.Context, conn driver.Conn, cfg Config, log *slog.Logger) ([]*shard, error) {
	rows, err := conn.Query(ctx, `SELECT shard_num, host_name, port FROM system.clusters
WHERE cluster = ? ORDER BY shard_num, replica_num`, cfg.Cluster)
	if err != nil {
		return nil, classify("read cluster "+cfg.Cluster+" from system.clusters", err)
	}
	var shards []*shard
	for rows.Next() {
		var num uint32
		var host string
		var port uint16
		if err := rows.Scan(&num, &host, &port); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read cluster %s from system.clusters: %w", cfg.Cluster, err)
		}
		if len(shards) == 0 || shards[len(shards)-1].num != num {
			shards = append(shards, &shard{num: num})
		}
		s := shards[len(shards)-1]
		s.addrs = append(s.addrs, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, classify("read cluster "+cfg.Cluster+" from system.clusters", err)
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("chsink: cluster %q is not in system.clusters of %s (check remote_servers in the server config)",
			cfg.Cluster, strings.Join(cfg.Addrs, ","))
	}
	closeAll := func() {
		for _, s := range shards {
			if s.conn != nil {
				s.conn.Close()
			}
		}
	}
	for _, s := range shards {
		sc := cfg
		sc.Addrs = s.addrs
		opts, err := sc.ClientOptions("")
		if err != nil {
			closeAll()
			return nil, err
		}
		if s.conn, err = clickhouse.Open(opts); err != nil {
			closeAll()
			return nil, fmt.Errorf("open clickhouse shard %d (%s): %w", s.num, strings.Join(s.addrs, ","), err)
		}
		if err := s.conn.Ping(ctx); err != nil {
			closeAll()
			return nil, classify(fmt.Sprintf("ping clickhouse shard %d (%s)", s.num, strings.Join(s.addrs, ",")), err)
		}
		// With several replicas a watermark read may reach a replica that
		// has not yet fetched the last committed block: a majority write
		// quorum plus sequentially consistent reads rule that out.
		if n := len(s.addrs); n > 1 {
			s.insert = clickhouse.Settings{"insert_quorum": n/2 + 1}
			s.watermark = clickhouse.Settings{"select_sequential_consistency": 1}
		}
		log.Info("clickhouse shard", "cluster", cfg.Cluster, "shard", s.num, "replicas", strings.Join(s.addrs, ","))
	}
	return shards, nil
}

// target returns the connection that partition's blocks go to (a write),
// or that reads its watermark through the Distributed tables, and ctx
// carrying the settings for either.
func (w *Writer) target(ctx context.Context, partition int32, watermark bool) (driver.Conn, context.Context) {
	if len(w.shards) == 0 {
		if !watermark && w.insertSettings != nil {
			ctx = clickhouse.Context(ctx, clickhouse.WithSettings(w.insertSettings))
		}
		return w.conn, ctx
	}
	if watermark {
		for _, s := range w.shards {
			if s.watermark != nil {
				return w.conn, clickhouse.Context(ctx, clickhouse.WithSettings(s.watermark))
			}
		}
		return w.conn, ctx
	}
	s := w.shards[ShardIndex(partition, len(w.shards))]
	if set := mergeSettings(s.insert, w.insertSettings); set != nil {
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(set))
	}
	return s.conn, ctx
}

// mergeSettings returns a and b in one map (nil when both are empty).
func mergeSettings(a, b clickhouse.Settings) clickhouse.Settings {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := make(clickhouse.Settings, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// ShardIndex is the shard (0-based, in shard_num order) that a partition's
// blocks are written to in cluster mode: partition % shards, the shard the
// Distributed tables' sharding key (kafka_partition, equal weights) names.
func ShardIndex(partition int32, shards int) int { return int(partition) % shards }

// Shards returns the shard addresses, in shard_num order (cluster mode; nil
// on a single server).
func (w *Writer) Shards() [][]string {
	var out [][]string
	for _, s := range w.shards {
		out = append(out, append([]string(nil), s.addrs...))
	}
	return out
}
