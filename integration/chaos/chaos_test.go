package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/taillight/taillight/integration"
)

// TestMain tears the shared backend down after the scenarios ran.
func TestMain(m *testing.M) { os.Exit(integration.Main(m)) }

// report logs one scenario's measured figures in a greppable line.
func report(t testing.TB, res result, extra string) {
	t.Logf("CHAOS %s mode=%s %s %s", t.Name(), size("fast", "full"), res, extra)
}

// TestChaosSIGKILL: `taillight process` is SIGKILLed at random points of
// progress (3 times in fast mode, 12 during a 1M-event run in full mode),
// restarted each time. Invariant: once drained, every acknowledged record is
// in trace_items FINAL or the DLQ exactly once, the views are exact, memory
// stays under the bound, no secret leaks.
func TestChaosSIGKILL(t *testing.T) {
	env := integration.Start(t)
	s := newStream(t, env, env.Brokers, 4, 1)
	n, kills := size(20000, 1_000_000), size(3, 12)
	s.produce(1, n, 1000)
	f := newFleet(t, s, "sigkill")
	rng := rand.New(rand.NewPCG(7, 8))
	total := uint64(len(s.g.Valid))
	var recover time.Duration
	for k := range kills {
		raw, _ := s.progress()
		target := raw + uint64(rng.IntN(int(total)/(2*kills)+1)) + 1
		p := f.start()
		if k > 0 {
			recover = max(recover, s.waitRows(raw+1, 3*time.Minute))
		}
		s.waitRows(target, size(3*time.Minute, 20*time.Minute))
		if k == 0 {
			p.scrape()
		}
		p.kill()
	}
	raw, _ := s.progress()
	t0 := time.Now()
	f.start()
	drain := s.waitDrained(size(3*time.Minute, 30*time.Minute))
	recover = max(recover, s.waitRows(raw+1, time.Second))
	logs, metrics := f.finish()
	res := s.check(logs, metrics)
	report(t, res, "kills="+itoa(kills)+" max_time_to_first_row_after_restart="+recover.Round(time.Millisecond).String()+
		" final_drain="+drain.Round(time.Second).String()+" total_after_last_kill="+time.Since(t0).Round(time.Second).String()+
		" peak_rss_mib="+itoa(int(f.peak.Load()>>20)))
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestChaosSIGKILLChangedConfig: as TestChaosSIGKILL, but every restart
// after a SIGKILL runs with other -route.patterns, so a block redone after
// a crash has other rollup keys than the one it replaces. Invariant: the
// common one, with endpoint rows compared with the ground truth routes
// aside and exactly with trace_items FINAL (whose routes are what each
// processor computed).
func TestChaosSIGKILLChangedConfig(t *testing.T) {
	env := integration.Start(t)
	s := newStream(t, env, env.Brokers, 4, 1)
	s.routesChanged = true
	n, kills := size(20000, 300_000), size(3, 8)
	s.produce(40, n, 1000)
	f := newFleet(t, s, "reconfig")
	base := slices.Clone(f.args)
	patterns := []string{"/users/:user", "/orders/:order/items,/users/:uid"}
	rng := rand.New(rand.NewPCG(41, 42))
	total := uint64(len(s.g.Valid))
	for k := range kills {
		f.args = append(slices.Clone(base), "-route.patterns", patterns[k%len(patterns)])
		raw, _ := s.progress()
		target := raw + uint64(rng.IntN(int(total)/(2*kills)+1)) + 1
		p := f.start()
		s.waitRows(target, size(3*time.Minute, 20*time.Minute))
		if k == 0 {
			p.scrape()
		}
		p.kill()
	}
	f.args = base
	f.start()
	drain := s.waitDrained(size(3*time.Minute, 30*time.Minute))
	logs, metrics := f.finish()
	res := s.check(logs, metrics)
	var changed uint64
	if err := s.query(fmt.Sprintf("SELECT count() FROM %s.trace_items FINAL WHERE route IN ('/users/:user', '/users/:uid', '/orders/:order/items')", s.db), &changed); err != nil {
		t.Fatal(err)
	}
	if changed == 0 {
		t.Fatal("no row was stored under a changed route pattern: the restarts did not change the configuration")
	}
	report(t, res, "kills="+itoa(kills)+" rows_under_changed_routes="+itoa(int(changed))+" final_drain="+drain.Round(time.Second).String())
}

// TestChaosRollingRestart: two processors of one group share the stream
// while records keep arriving; each in turn is stopped with SIGTERM and
// restarted. Invariant: the common one (each acknowledged record exactly
// once in trace_items FINAL or the DLQ; exact views; bounded memory; no
// secret anywhere), and every SIGTERM exits 0 within a minute.
func TestChaosRollingRestart(t *testing.T) {
	env := integration.Start(t)
	s := newStream(t, env, env.Brokers, 6, 1)
	n := size(6000, 100_000)
	f := newFleet(t, s, "rolling")
	a, b := f.start(), f.start()
	s.produce(10, n, 1000)
	s.waitRows(uint64(len(s.g.Valid))/4, 3*time.Minute)
	// Each restart waits for new rows before the next stop, so one
	// processor is always up.
	a.term()
	f.start()
	s.produce(11, n, 1000)
	raw, _ := s.progress()
	s.waitRows(raw+1, 3*time.Minute)
	b.term()
	f.start()
	s.produce(12, n, 1000)
	drain := s.waitDrained(size(3*time.Minute, 20*time.Minute))
	logs, metrics := f.finish()
	res := s.check(logs, metrics)
	report(t, res, "restarts=2 drain_after_last_restart="+drain.Round(time.Second).String()+" peak_rss_mib="+itoa(int(f.peak.Load()>>20)))
}

// TestChaosClickHouseOutage: ClickHouse is stopped mid-stream for 10 s (and
// for 60 s in full mode) while records keep arriving. Invariant: the common
// one; the processor survives the outage without a restart and resumes.
func TestChaosClickHouseOutage(t *testing.T) {
	env := integration.Start(t)
	env.RequireLocal(t)
	for _, outage := range size([]time.Duration{10 * time.Second}, []time.Duration{10 * time.Second, 60 * time.Second}) {
		t.Run(outage.String(), func(t *testing.T) {
			s := newStream(t, env, env.Brokers, 3, 1)
			n := size(8000, 200_000)
			f := newFleet(t, s, "outage")
			p := f.start()
			s.produce(20, n, 1000)
			s.waitRows(uint64(len(s.g.Valid))/5, 3*time.Minute)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := env.ClickHouse.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			up := false
			defer func() {
				if !up {
					env.ClickHouse.Start(context.Background())
				}
			}()
			stopped := time.Now()
			s.produce(21, n, 1000) // more arrives during the outage
			<-time.After(time.Until(stopped.Add(outage)))
			if err := env.ClickHouse.Start(ctx); err != nil {
				t.Fatal(err)
			}
			up = true
			s.conn = env.ClickHouseConn(t)
			raw, _ := s.progress()
			recover := s.waitRows(raw+1, 3*time.Minute)
			drain := s.waitDrained(size(3*time.Minute, 20*time.Minute))
			if p.exited() {
				t.Fatalf("the processor exited during the outage: %v\n%s", p.err, tail(p.stderr.String()))
			}
			logs, metrics := f.finish()
			res := s.check(logs, metrics)
			report(t, res, "outage="+outage.String()+" first_row_after_restart="+recover.Round(time.Millisecond).String()+
				" drain_after_restart="+drain.Round(time.Second).String()+" peak_rss_mib="+itoa(int(f.peak.Load()>>20)))
		})
	}
}

// TestChaosOffsetReset: after the stream drained, the group's committed
// offsets are deleted (kadm DeleteGroups) and a processor restarts: Kafka
// replays everything from the earliest offset. Invariant: the common one —
// the replay adds no row and no count (the processor resumes from
// ClickHouse's watermark), and new records after it are counted once.
func TestChaosOffsetReset(t *testing.T) {
	env := integration.Start(t)
	s := newStream(t, env, env.Brokers, 4, 1)
	n := size(8000, 200_000)
	f := newFleet(t, s, "reset")
	p := f.start()
	s.produce(30, n, 1000)
	s.waitDrained(size(3*time.Minute, 20*time.Minute))
	p.term()
	rawBefore, _ := s.progress()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(integration.NewKafkaClient(t, s.brokers))
	if _, err := adm.DeleteGroups(ctx, "reset"); err != nil {
		t.Fatalf("delete group: %v", err)
	}
	f.start()
	s.produce(31, n/4, 1000)
	drain := s.waitDrained(size(3*time.Minute, 20*time.Minute))
	rawAfter, _ := s.progress()
	logs, metrics := f.finish()
	res := s.check(logs, metrics)
	// Each record written twice would show as raw rows beyond the new ones.
	newValid := uint64(len(s.g.Valid)) - rawBefore
	if rawAfter-rawBefore != newValid {
		t.Errorf("after the reset %d raw rows were inserted; want %d (only the new records)", rawAfter-rawBefore, newValid)
	}
	report(t, res, "replayed_rows_inserted="+itoa(int(rawAfter-rawBefore-newValid))+" drain_after_reset="+drain.Round(time.Second).String()+
		" peak_rss_mib="+itoa(int(f.peak.Load()>>20)))
}

// TestChaosRebalanceStorm: processors join and leave (SIGTERM or SIGKILL)
// every 2 s for 20 s (fast) or 2 minutes (full), up to three at a time,
// while records keep arriving. Invariant: the common one.
func TestChaosRebalanceStorm(t *testing.T) {
	env := integration.Start(t)
	s := newStream(t, env, env.Brokers, 6, 1)
	f := newFleet(t, s, "storm")
	f.start()
	rng := rand.New(rand.NewPCG(40, 41))
	stormEnd := time.Now().Add(size(20*time.Second, 2*time.Minute))
	events := 0
	for i := uint64(0); time.Now().Before(stormEnd); i++ {
		next := time.Now().Add(2 * time.Second)
		s.produce(42+i, size(1500, 20000), 1000)
		<-time.After(time.Until(next))
		run := f.running()
		switch {
		case len(run) < 3 && (len(run) <= 1 || rng.IntN(2) == 0):
			f.start()
		case rng.IntN(3) == 0:
			run[rng.IntN(len(run))].kill()
		default:
			run[rng.IntN(len(run))].term()
		}
		events++
	}
	if len(f.running()) == 0 {
		f.start()
	}
	drain := s.waitDrained(size(3*time.Minute, 20*time.Minute))
	logs, metrics := f.finish()
	res := s.check(logs, metrics)
	report(t, res, "membership_changes="+itoa(events)+" processes_started="+itoa(f.started)+" drain_after_storm="+drain.Round(time.Second).String()+
		" peak_rss_mib="+itoa(int(f.peak.Load()>>20)))
}

// TestChaosHostileInput: a stream where late events (up to 2 minutes),
// clock skew between scripts (api 7 minutes behind, web 5 ahead; planted in
// every scenario's stream) and one poison record in 97 plus, every 50
// records a truncated item full of secrets (every tenth of them followed by
// an item over schemas.MaxItemBytes). Invariant: the common one — each poison or oversized
// record in the DLQ (by source coordinates) with its secrets redacted, the
// views exact for the skewed minutes.
func TestChaosHostileInput(t *testing.T) {
	env := integration.Start(t)
	s := newStream(t, env, env.Brokers, 3, 1)
	f := newFleet(t, s, "hostile")
	f.start()
	s.produce(50, size(5000, 200_000), 50)
	drain := s.waitDrained(size(3*time.Minute, 20*time.Minute))
	logs, metrics := f.finish()
	res := s.check(logs, metrics)
	report(t, res, "poison_with_secrets="+itoa(s.hostile)+" oversized="+itoa(s.oversized)+" drain="+drain.Round(time.Second).String()+" peak_rss_mib="+itoa(int(f.peak.Load()>>20)))
}

// TestChaosProcessorPaused: a processor is SIGSTOPped mid-stream for longer
// than its session timeout, a second one takes its partitions over, and the
// first is resumed (SIGCONT) with its blocks in flight. Invariant: the
// common one; the paused processor's late blocks count nothing twice.
func TestChaosProcessorPaused(t *testing.T) {
	env := integration.Start(t)
	s := newStream(t, env, env.Brokers, 4, 1)
	n := size(30000, 600_000)
	s.produce(50, n, 1000)
	f := newFleet(t, s, "paused")
	a := f.start()
	s.waitRows(uint64(len(s.g.Valid))/5, 3*time.Minute)
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			a.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	raw, _ := s.progress()
	f.start()
	// The second member stores rows only once the session timeout (6 s)
	// has moved the paused member's partitions to it.
	takeover := s.waitRows(raw+1, 3*time.Minute)
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	drain := s.waitDrained(size(3*time.Minute, 20*time.Minute))
	logs, metrics := f.finish()
	res := s.check(logs, metrics)
	report(t, res, "takeover="+takeover.Round(time.Millisecond).String()+" drain_after_resume="+drain.Round(time.Second).String()+
		" peak_rss_mib="+itoa(int(f.peak.Load()>>20)))
}

// TestChaosClickHouseStallDuringRebalance: ClickHouse is SIGSTOPped (it
// accepts connections and answers nothing) while a second and a third
// processor join and the first is stopped with SIGTERM; then it resumes.
// Invariant: the common one; every processor's SIGTERM still exits 0 (the
// revoke is bounded while ClickHouse hangs).
func TestChaosClickHouseStallDuringRebalance(t *testing.T) {
	env := integration.Start(t)
	env.RequireLocal(t)
	s := newStream(t, env, env.Brokers, 6, 1)
	n := size(20000, 400_000)
	f := newFleet(t, s, "stall")
	a := f.start()
	s.produce(60, n, 1000)
	s.waitRows(uint64(len(s.g.Valid))/5, 3*time.Minute)
	pid := env.ClickHouse.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	f.start()
	f.start()
	a.term()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	drain := s.waitDrained(size(3*time.Minute, 20*time.Minute))
	logs, metrics := f.finish()
	res := s.check(logs, metrics)
	report(t, res, "drain_after_resume="+drain.Round(time.Second).String()+" peak_rss_mib="+itoa(int(f.peak.Load()>>20)))
}
