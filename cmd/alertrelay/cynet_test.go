package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	cynetemu "github.com/alertrelay/alertrelay/internal/emulator/cynet"
	"github.com/alertrelay/alertrelay/internal/emulator/httpsink"
)

// startDaemonAdmin is startDaemon for configs without a listening source:
// it waits for the admin endpoint instead (/healthz: /readyz waits for the
// sinks' destinations, which these tests take down).
func startDaemonAdmin(t *testing.T, cfg, admin string) *child {
	t.Helper()
	c := startChild(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get("http://" + admin + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon never became ready: %s", c.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCynetCrashDuringBacklogDrain kills the daemon at random moments while
// it drains a Cynet backlog, several times, then lets it finish: every
// alert must reach the SIEM. The SIEM is down during the kills, so nothing
// can be duplicated on the delivery side; a duplicate can only come from
// the source emitting an alert twice. The dedup records allow that only for
// a kill between the queue's fsync and the state store's (the page in
// flight): at most one page per kill (docs/decisions/0003). The daemon's RSS
// is sampled throughout: a 100,000-alert backlog must not be held in
// memory.
func TestCynetCrashDuringBacklogDrain(t *testing.T) {
	const kills, pageSize = 4, 1000
	backlog := 100_000
	if raceEnabled {
		backlog = 20_000
	}
	api := cynetemu.New(cynetemu.Options{Seed: 3})
	api.AddAlertsAt(backlog, time.Now().Add(-2*time.Hour))
	if err := api.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	recv := httpsink.New(httpsink.Options{IDsOnly: true})
	if err := recv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	recv.SetDown(true)

	dir := t.TempDir()
	admin := freePort(t)
	cfg := filepath.Join(dir, "alertrelay.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state_dir: %s
admin: {listen: "%s"}
log: {level: warn}
sources:
  acme:
    type: cynet
    base_url: %s
    username: %s
    password: %s
    client_id: "%s"
    page_size: %d
    poll_interval: 1s
    max_requests_per_second: 1000
sinks:
  siem:
    type: http
    url: %s/ingest
    retry: {initial: 50ms, max: 200ms}
`, dir, admin, api.URL(), cynetemu.DefaultUser, cynetemu.DefaultPassword, cynetemu.DefaultClientID, pageSize, recv.URL())), 0o600)

	rng := rand.New(rand.NewPCG(11, 12))
	peak := 0
	sample := func(c *child, d time.Duration) {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			peak = max(peak, rssKB(c.cmd.Process.Pid))
			time.Sleep(50 * time.Millisecond)
		}
	}
	for r := 0; r < kills; r++ {
		c := startDaemonAdmin(t, cfg, admin)
		sample(c, time.Duration(200+rng.IntN(800))*time.Millisecond)
		c.stop(t, syscall.SIGKILL)
		t.Logf("round %d: killed after %d page requests", r, api.PageRequests())
	}
	recv.SetDown(false)
	c := startDaemonAdmin(t, cfg, admin)
	deadline := time.Now().Add(3 * time.Minute)
	for recv.Distinct() < backlog && time.Now().Before(deadline) {
		sample(c, 100*time.Millisecond)
	}
	sample(c, 2*time.Second) // a further poll cycle must not repeat anything
	c.stop(t, syscall.SIGTERM)

	ids := recv.IDs()
	dups := 0
	for _, n := range ids {
		dups += n - 1
	}
	t.Logf("backlog %d, %d kills: %d distinct delivered, %d duplicates; peak RSS %d KB; %d page requests",
		backlog, kills, len(ids), dups, peak, api.PageRequests())
	if len(ids) != backlog {
		t.Fatalf("delivered %d distinct alerts, want all %d", len(ids), backlog)
	}
	if limit := kills * pageSize; dups > limit {
		t.Fatalf("%d duplicates after %d kills, want at most one page (%d) per kill", dups, kills, pageSize)
	}
	if limit := 200 * 1024; !raceEnabled && peak > limit {
		t.Errorf("peak RSS %d KB while draining the backlog, want under %d KB", peak, limit)
	}
}
