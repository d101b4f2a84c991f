package cybertrace

import (
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/alertrelay/alertrelay/internal/telemetry"
)

func TestIdleTimeout(t *testing.T) {
	t.Run("idle connection is closed", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.IdleTimeout = time.Second
		r := startSource(t, cfg, nil)
		c := r.dial(t)
		start := time.Now()
		if !closedByPeer(c, testTimeout) {
			t.Fatalf("idle connection still open after %s", testTimeout)
		}
		if el := time.Since(start); el < 900*time.Millisecond || el > 3*time.Second {
			t.Errorf("idle connection closed after %s, want about 1s", el)
		}
		r.waitServed(t, 1)
	})

	t.Run("partial line at idle timeout is dead-lettered", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.IdleTimeout = time.Second
		r := startSource(t, cfg, nil)
		c := r.dial(t)
		if _, err := c.Write([]byte(seed0 + "\ncategory=KL_partial")); err != nil {
			t.Fatal(err)
		}
		if !closedByPeer(c, testTimeout) {
			t.Fatalf("idle connection still open after %s", testTimeout)
		}
		r.waitServed(t, 1)
		if got := originals(t, r.rec().get()); !cmp.Equal(got, []string{seed0}) {
			t.Errorf("documents: %q", got)
		}
		want := []deadRec{{"incomplete line at idle timeout", "category=KL_partial"}}
		if d := cmp.Diff(want, r.dl.get()); d != "" {
			t.Errorf("dead letters (-want +got):\n%s", d)
		}
		if got := metricsOf(r.m); got.Invalid != 1 || got.Events != 1 {
			t.Errorf("metrics: %+v", got)
		}
	})

	t.Run("activity keeps the connection open", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.IdleTimeout = time.Second
		r := startSource(t, cfg, nil)
		c := r.dial(t)
		var want []string
		for i := 0; i < 8; i++ { // 2.4 s, well past idle_timeout
			if _, err := c.Write([]byte(seed1 + "\n")); err != nil {
				t.Fatalf("write %d: %v (closed while active?)", i, err)
			}
			want = append(want, seed1)
			if closedByPeer(c, 300*time.Millisecond) {
				t.Fatalf("active connection closed after %d lines", i+1)
			}
		}
		if !closedByPeer(c, testTimeout) {
			t.Fatal("connection not closed once idle")
		}
		r.waitServed(t, 1)
		if got := originals(t, r.rec().get()); !cmp.Equal(got, want) {
			t.Errorf("got %d documents, want %d", len(got), len(want))
		}
	})
}

// TestIdleTimeoutDuringBackPressure: a connection that the pipeline keeps
// from reading (WriteBatch blocks) is not idle. Once the pipeline takes the
// batch, the lines CyberTrace sent meanwhile must still be read.
func TestIdleTimeoutDuringBackPressure(t *testing.T) {
	for _, tc := range []struct {
		name      string
		maxEvents int // 1: the batch is flushed from handle; 2048: at the linger deadline
	}{{"flush on full batch", 1}, {"flush at linger", 2048}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.IdleTimeout = time.Second
			cfg.Batch.MaxEvents = tc.maxEvents
			w := newRecWriter()
			w.gate = make(chan struct{})
			r := startSource(t, cfg, w)
			c := r.dial(t)
			if _, err := c.Write([]byte(seed0 + "\n")); err != nil {
				t.Fatal(err)
			}
			select {
			case <-w.entered:
			case <-time.After(testTimeout):
				t.Fatal("WriteBatch not called")
			}
			// The source is blocked in WriteBatch; CyberTrace keeps sending.
			if _, err := c.Write([]byte(seed1 + "\n" + alert + "\n")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2500 * time.Millisecond) // back-pressure for 2.5 × idle_timeout
			close(w.gate)
			time.Sleep(100 * time.Millisecond)
			c.Close()
			r.waitServed(t, 1)
			if d := cmp.Diff([]string{seed0, seed1, alert}, originals(t, w.get())); d != "" {
				t.Errorf("documents (-want +got):\n%s\ndead letters: %q", d, r.dl.get())
			}
		})
	}
}

func TestMaxConnections(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnections = 2
	r := startSource(t, cfg, nil)
	c1, c2 := r.dial(t), r.dial(t)
	waitFor(t, "two open connections", func() bool { return telemetry.Value(r.m.ConnActive) == 2 })

	c3 := r.dial(t)
	c3.Write([]byte(seed2 + "\n")) // may fail: the server closes c3
	if !closedByPeer(c3, testTimeout) {
		t.Fatal("third connection was not closed")
	}
	waitFor(t, "ConnRefused = 1", func() bool { return telemetry.Value(r.m.ConnRefused) == 1 })

	// Once one of the two closes, a new connection is accepted. Its slot
	// is freed just after ConnActive drops, so a connection refused in
	// that window is retried.
	if _, err := c1.Write([]byte(seed0 + "\n")); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	waitFor(t, "one open connection", func() bool { return telemetry.Value(r.m.ConnActive) == 1 })
	var c4 net.Conn
	deadline := time.Now().Add(testTimeout)
	for c4 == nil {
		if time.Now().After(deadline) {
			t.Fatal("no new connection accepted after one closed")
		}
		refused := telemetry.Value(r.m.ConnRefused)
		c := r.dial(t)
		waitFor(t, "accept or refuse", func() bool {
			return telemetry.Value(r.m.ConnAccepted) == 3 || telemetry.Value(r.m.ConnRefused) > refused
		})
		if telemetry.Value(r.m.ConnAccepted) == 3 {
			c4 = c
		} else {
			c.Close()
			time.Sleep(10 * time.Millisecond)
		}
	}
	if _, err := c4.Write([]byte(alert + "\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Write([]byte(seed1 + "\n")); err != nil {
		t.Fatal(err)
	}
	c4.Close()
	c2.Close()
	r.waitServed(t, 3)
	got := originals(t, r.rec().get())
	if d := cmp.Diff([]string{seed0, seed1, alert}, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); d != "" {
		t.Errorf("documents (-want +got):\n%s", d)
	}
	if n := telemetry.Value(r.m.ConnRefused); n < 1 {
		t.Errorf("ConnRefused = %v", n)
	}
}

func TestAllowCIDRs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow []string
		ok    bool
	}{
		{"loopback excluded", []string{"192.0.2.0/24", "10.0.0.0/8", "::1/128"}, false},
		{"other single address", []string{"127.0.0.2"}, false},
		{"loopback network", []string{"127.0.0.0/8"}, true},
		{"single address", []string{"127.0.0.1"}, true},
		{"among others", []string{"192.0.2.0/24", "::1", "127.0.0.1/32"}, true},
		{"unmasked prefix", []string{"127.1.2.3/8"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.AllowCIDRs = tc.allow
			r := startSource(t, cfg, nil)
			c := r.dial(t)
			_, err := c.Write([]byte(seed0 + "\n" + seed1 + "\n"))
			if !tc.ok {
				if !closedByPeer(c, testTimeout) {
					t.Fatal("denied connection was not closed")
				}
				waitFor(t, "ConnDenied = 1", func() bool { return telemetry.Value(r.m.ConnDenied) == 1 })
				if err := r.stop(); err != nil {
					t.Fatal(err)
				}
				if n := r.rec().len(); n != 0 {
					t.Errorf("%d documents from a denied peer", n)
				}
				if got := metricsOf(r.m); got != (lineMetrics{}) {
					t.Errorf("metrics: %+v", got)
				}
				if n := telemetry.Value(r.m.ConnAccepted); n != 0 {
					t.Errorf("ConnAccepted = %v", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			r.waitServed(t, 1)
			if got := originals(t, r.rec().get()); !cmp.Equal(got, []string{seed0, seed1}) {
				t.Errorf("documents: %q", got)
			}
			if n := telemetry.Value(r.m.ConnDenied); n != 0 {
				t.Errorf("ConnDenied = %v", n)
			}
		})
	}
}
