package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/taillight/taillight/internal/testenv"
)

// procStatusKB reads a field (VmRSS, VmHWM) of /proc/pid/status, in KiB.
func procStatusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// TestIngestMemoryBudget posts 100 bodies of 8.3 MB (900 valid items
// each) at once to a standalone `taillight ingest` on a real Kafka, with
// the default in-flight budget (256 MiB). Requests past the budget get
// 429 with Retry-After, the others 202, nothing else; the process's peak
// RSS (VmHWM) stays within the budget + 100 MiB, and once the burst is
// over it hands the memory back.
func TestIngestMemoryBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 830 MB through ingest")
	}
	env := Start(t)
	topic := TopicName(t)
	env.CreateTopic(t, topic, 4)
	bin := TaillightBinary(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	const token = "mem-test-token"
	cmd := exec.Command(bin, "ingest", "-listen", addr, "-kafka.brokers", strings.Join(env.Brokers, ","),
		"-kafka.topic", topic, "-log.level", "warn")
	cmd.Env = []string{"TAILLIGHT_INGEST_TOKEN=" + token, "PATH=" + os.Getenv("PATH")} // no GOMEMLIMIT from the caller
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("ingest stderr:\n%s", stderr.String())
		}
	}()
	base := "http://" + addr
	testenv.Eventually(t, time.Minute, 50*time.Millisecond, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "ingest not ready")
	idleKB, _ := procStatusKB(cmd.Process.Pid, "VmRSS")

	// 900 items of about 9.2 KB: 8.3 MB, under the 8 MiB body limit.
	msg := strings.Repeat("m", 8935)
	var body bytes.Buffer
	body.WriteByte('[')
	ts := time.Now().UnixMilli()
	for i := range 900 {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"outcome":"ok","scriptName":"mem-%d","eventTimestamp":%d,"cpuTime":2,"wallTime":5,`+
			`"event":{"request":{"url":"https://m.example/items/%d","method":"GET","headers":{}},"response":{"status":200}},`+
			`"logs":[{"message":["%s"],"level":"log","timestamp":%d}],"exceptions":[]}`, i%24, ts, i, msg, ts)
	}
	body.WriteByte(']')
	if n := body.Len(); n < 8_200_000 || n > 8<<20 {
		t.Fatalf("body of %d bytes; want about 8.3 MB", n)
	}

	// Sample RSS while the burst runs (VmHWM gives the peak anyway).
	var sampledPeak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if kb, err := procStatusKB(cmd.Process.Pid, "VmRSS"); err == nil && kb > sampledPeak.Load() {
				sampledPeak.Store(kb)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	var (
		mu    sync.Mutex
		codes = map[int]int{}
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodPost, base+"/v1/traces", bytes.NewReader(body.Bytes()))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			code := -1
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
				if code == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
					code = -429 // counted as wrong
				}
			} else {
				t.Logf("POST: %v", err)
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(began)
	close(stop)
	<-sampled
	peakKB, err := procStatusKB(cmd.Process.Pid, "VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	const budgetMiB = 256
	t.Logf("100 POSTs of %.1f MB in %s: %v (status: count); RSS idle %d MiB, peak %d MiB (VmHWM; sampled %d MiB); budget %d MiB",
		float64(body.Len())/1e6, took.Round(time.Millisecond), codes, idleKB>>10, peakKB>>10, sampledPeak.Load()>>10, budgetMiB)
	if codes[202] == 0 || codes[429] == 0 || codes[202]+codes[429] != 100 {
		t.Errorf("answers %v; want only 202 and 429 (with Retry-After), some of each", codes)
	}
	if peakKB>>10 > budgetMiB+100 {
		t.Errorf("peak RSS %d MiB; want at most the %d MiB budget + 100 MiB", peakKB>>10, budgetMiB)
	}

	// Every accepted item is in Kafka.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := kadm.NewClient(env.KafkaClient(t)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	if n != int64(900*codes[202]) {
		t.Errorf("topic holds %d records; want %d (900 per 202)", n, 900*codes[202])
	}

	// The memory is handed back once the burst is over.
	var kb int64
	back := testenv.Poll(time.Minute, 200*time.Millisecond, func() bool {
		var err error
		if kb, err = procStatusKB(cmd.Process.Pid, "VmRSS"); err != nil {
			t.Fatal(err)
		}
		return kb>>10 <= idleKB>>10+64
	})
	if back {
		t.Logf("RSS back to %d MiB after %s", kb>>10, time.Since(began.Add(took)).Round(100*time.Millisecond))
	} else {
		t.Errorf("RSS still %d MiB a minute after the burst (idle %d MiB)", kb>>10, idleKB>>10)
	}
}
