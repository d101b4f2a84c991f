package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alertrelay/alertrelay/internal/emulator/cybertrace"
	"github.com/alertrelay/alertrelay/internal/emulator/httpsink"
)

// rssKB reads a process's resident set size.
func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return -1
}

// TestSinkOutage takes the SIEM down while CyberTrace keeps sending: the
// events pile up in the disk queue, the daemon's memory stays flat, and
// once the SIEM is back every event is delivered. The outage lasts 60 s
// (ALERTRELAY_OUTAGE_SECONDS to change it; 20 s under the race detector).
func TestSinkOutage(t *testing.T) {
	seconds, rate := 60, 10000.0
	if raceEnabled {
		seconds, rate = 20, 2000
	}
	if n, err := strconv.Atoi(os.Getenv("ALERTRELAY_OUTAGE_SECONDS")); err == nil && n > 0 {
		seconds = n
	}
	outage := time.Duration(seconds) * time.Second

	recv := httpsink.New(httpsink.Options{IDsOnly: true})
	if err := recv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	recv.SetDown(true)

	dir := t.TempDir()
	addr, admin := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "alertrelay.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state_dir: %s
admin: {listen: "%s"}
log: {level: error}
sources:
  ct: {type: cybertrace, listen: "%s"}
sinks:
  siem:
    type: http
    url: %s/ingest
    buffer: {type: disk, max_bytes: 8589934592}
    retry: {initial: 100ms, max: 1s}
`, dir, admin, addr, recv.URL())), 0o600)
	d := startDaemon(t, cfg, addr)
	pid := d.cmd.Process.Pid

	count := int(rate * outage.Seconds())
	pushed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), outage+time.Minute)
		defer cancel()
		st, err := cybertrace.Push(ctx, cybertrace.PushConfig{Addr: addr, Count: count, Rate: rate, Conns: 2,
			Gen: cybertrace.DefaultGenOptions(), Seed: 5})
		if err == nil && st.Lines != int64(count) {
			err = fmt.Errorf("pushed %d of %d", st.Lines, count)
		}
		pushed <- err
	}()

	// Sample the daemon's RSS through the outage.
	var samples []int
	start := time.Now()
	for time.Since(start) < outage {
		time.Sleep(time.Second)
		samples = append(samples, rssKB(pid))
	}
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}
	if got := recv.Distinct(); got != 0 {
		t.Fatalf("receiver got %d events while it was down", got)
	}
	waitMetric(t, admin, `alertrelay_source_events_total{source="ct"}`, float64(count), time.Minute)
	queued := metric(t, admin, `alertrelay_sink_queue_events{sink="siem"}`)

	recv.SetDown(false)
	deadline := time.Now().Add(3 * time.Minute)
	for recv.Distinct() < count && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	drain := time.Since(start) - outage
	d.stop(t, syscall.SIGTERM)

	early, late := 0, 0
	for i, s := range samples {
		if i < len(samples)/4 {
			early = max(early, s)
		} else {
			late = max(late, s)
		}
	}
	t.Logf("outage %s at %.0f events/s: %d events, %.0f queued on disk at the end; RSS peak first quarter %d KB, rest %d KB; drained in %s",
		outage, rate, count, queued, early, late, drain.Round(time.Millisecond))
	if got := recv.Distinct(); got != count {
		t.Fatalf("delivered %d distinct events after the outage, want %d", got, count)
	}
	// Flat: the backlog grows on disk, not in memory.
	if late > early+32*1024 {
		t.Errorf("RSS grew during the outage: %d KB early, %d KB later", early, late)
	}
}
