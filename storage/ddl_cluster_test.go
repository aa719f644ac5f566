package storage

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestRenderCluster(t *testing.T) {
	f := func(stmt string, p DDLParams, want ...string) {
		t.Helper()
		got, err := p.RenderCluster(stmt)
		if err != nil {
			t.Fatalf("RenderCluster(%q): %v", stmt, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("RenderCluster(%q) =\n%q\nwant\n%q", stmt, got, want)
		}
	}
	single := DDLParams{Database: "tl"}
	cluster := DDLParams{Database: "tl", Cluster: "c1"}
	sharded := "CREATE TABLE IF NOT EXISTS {{database}}.trace_items {{on_cluster}}\n(kafka_partition Int32)\nENGINE = {{replicated}}ReplacingMergeTree\nORDER BY kafka_partition"
	f(sharded, single, "CREATE TABLE IF NOT EXISTS tl.trace_items\n(kafka_partition Int32)\nENGINE = ReplacingMergeTree\nORDER BY kafka_partition")
	f(sharded, cluster,
		"CREATE TABLE IF NOT EXISTS tl.trace_items_local ON CLUSTER c1\n(kafka_partition Int32)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tl/trace_items_local', '{replica}')\nORDER BY kafka_partition",
		"CREATE TABLE IF NOT EXISTS tl.trace_items ON CLUSTER c1 AS tl.trace_items_local\nENGINE = Distributed(c1, tl, trace_items_local, kafka_partition)")
	// Engine arguments follow the replication ones; an unsharded table
	// keeps its name and gets no Distributed table.
	f("CREATE TABLE IF NOT EXISTS {{database}}.schema_migrations {{on_cluster}} (v UInt32, at DateTime) ENGINE = {{replicated}}ReplacingMergeTree(at) ORDER BY v", cluster,
		"CREATE TABLE IF NOT EXISTS tl.schema_migrations ON CLUSTER c1 (v UInt32, at DateTime) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tl/schema_migrations', '{replica}', at) ORDER BY v")
	// An ALTER of a sharded table alters the local table, then recreates
	// the Distributed one over it.
	f("ALTER TABLE {{database}}.rollup_blocks {{on_cluster}}\n    MODIFY COLUMN host LowCardinality(String)", cluster,
		"ALTER TABLE tl.rollup_blocks_local ON CLUSTER c1\n    MODIFY COLUMN host LowCardinality(String)",
		"DROP TABLE IF EXISTS tl.rollup_blocks ON CLUSTER c1",
		"CREATE TABLE IF NOT EXISTS tl.rollup_blocks ON CLUSTER c1 AS tl.rollup_blocks_local\nENGINE = Distributed(c1, tl, rollup_blocks_local, kafka_partition)")
	f("ALTER TABLE {{database}}.rollup_minutes {{on_cluster}}\n    ADD COLUMN IF NOT EXISTS w String,\n    MODIFY ORDER BY (kind, toStartOfHour(minute), w)", cluster,
		"ALTER TABLE tl.rollup_minutes_local ON CLUSTER c1\n    ADD COLUMN IF NOT EXISTS w String,\n    MODIFY ORDER BY (kind, toStartOfHour(minute), w)",
		"DROP TABLE IF EXISTS tl.rollup_minutes ON CLUSTER c1",
		"CREATE TABLE IF NOT EXISTS tl.rollup_minutes ON CLUSTER c1 AS tl.rollup_minutes_local\nENGINE = Distributed(c1, tl, rollup_minutes_local, kafka_partition)")
	f("ALTER TABLE {{database}}.schema_migrations {{on_cluster}} MODIFY COLUMN name LowCardinality(String)", cluster,
		"ALTER TABLE tl.schema_migrations ON CLUSTER c1 MODIFY COLUMN name LowCardinality(String)")
	// Views and databases: as Render.
	f("CREATE VIEW IF NOT EXISTS {{database}}.v {{on_cluster}} AS SELECT * FROM {{database}}.trace_items", cluster,
		"CREATE VIEW IF NOT EXISTS tl.v ON CLUSTER c1 AS SELECT * FROM tl.trace_items")

	if _, err := cluster.RenderCluster("CREATE TABLE IF NOT EXISTS {{database}}.m {{on_cluster}} (x UInt8) ENGINE = Memory"); err == nil {
		t.Fatal("RenderCluster accepted a table without a {{replicated}} engine")
	}
}

// Every table of the embedded DDL that carries Kafka coordinates is
// sharded in cluster mode, and every sharded table exists; every statement
// renders; every MergeTree table is Replicated in cluster mode.
func TestRenderClusterDDL(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]bool{}
	p := DDLParams{Database: "tl", Cluster: "c1"}
	for _, m := range ms {
		for _, s := range m.Statements {
			out, err := p.RenderCluster(s)
			if err != nil {
				t.Fatalf("%s: %v", m.File, err)
			}
			if mm := createTable.FindStringSubmatch(s); mm != nil {
				created[mm[1]] = true
				if has := strings.Contains(s, "kafka_partition"); has != IsSharded(mm[1]) {
					t.Errorf("%s: table %s has kafka_partition = %v but IsSharded = %v", m.File, mm[1], has, IsSharded(mm[1]))
				}
			}
			for _, o := range out {
				if !strings.Contains(o, "ON CLUSTER c1") {
					t.Errorf("%s: rendered statement lacks ON CLUSTER: %q", m.File, o)
				}
				if regexp.MustCompile(`ENGINE = [A-Za-z]*MergeTree`).MatchString(o) && !strings.Contains(o, "ENGINE = Replicated") {
					t.Errorf("%s: MergeTree table not Replicated: %q", m.File, o)
				}
			}
		}
	}
	for _, s := range ShardedTables {
		if !created[s] {
			t.Errorf("sharded table %s is not created by the DDL", s)
		}
	}
}
