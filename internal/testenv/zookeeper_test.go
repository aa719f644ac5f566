package testenv

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestZooKeeper(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ZooKeeper server; skipped under -short")
	}
	e2e := E2E()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	z, err := StartZooKeeper(ctx, ZooKeeperConfig{})
	if err != nil {
		if !e2e && errors.Is(err, ErrZooKeeperNotFound) {
			t.Skipf("skipping: %v (or set TAILLIGHT_E2E=1 to have the test install it)", err)
		}
		t.Fatalf("StartZooKeeper: %v", err)
	}
	defer z.Close()
	if !strings.HasPrefix(z.Addr(), "127.0.0.1:") || z.Port() == 0 {
		t.Fatalf("Addr() = %q; want 127.0.0.1:<free port>", z.Addr())
	}
	srvr, err := z.FourLetter(ctx, "srvr")
	if err != nil || !strings.Contains(srvr, "Zookeeper version") || !strings.Contains(srvr, "Mode: standalone") {
		t.Fatalf("srvr = %q, %v; want a standalone server's stats", srvr, err)
	}
	if err := z.openSession(ctx); err != nil {
		t.Fatalf("open a session: %v", err)
	}
	pid, dir := z.PID(), z.Dir()
	if err := z.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("zookeeper pid %d still runs after Close", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir %s still exists after Close (%v)", dir, err)
	}
	if err := z.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestClickHouseClusterXML(t *testing.T) {
	got, err := ClickHouseClusterXML(ClickHouseCluster{
		Name: "c1", Shards: [][]string{{"127.0.0.1:9000"}, {"127.0.0.1:9001", "127.0.0.1:9002"}},
		ZooKeeper: []string{"127.0.0.1:2181"}, Shard: "02", Replica: "r<1>", InterserverPort: 9009,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"<c1>", "<replica><host>127.0.0.1</host><port>9001</port></replica>\n                <replica><host>127.0.0.1</host><port>9002</port></replica>",
		`<node index="1"><host>127.0.0.1</host><port>2181</port></node>`,
		"<shard>02</shard>", "<replica>r&lt;1&gt;</replica>", "<interserver_http_port>9009</interserver_http_port>",
		"<distributed_ddl>",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("cluster XML lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "<shard>\n") != 2 {
		t.Errorf("want 2 shards:\n%s", got)
	}
	if _, err := ClickHouseClusterXML(ClickHouseCluster{Name: "c1"}); err == nil {
		t.Error("an incomplete cluster was accepted")
	}
	if _, err := ClickHouseClusterXML(ClickHouseCluster{Name: "c1", Shards: [][]string{{"nohostport"}}, ZooKeeper: []string{"127.0.0.1:1"}, Shard: "1", Replica: "1"}); err == nil {
		t.Error("a replica without port was accepted")
	}
}
