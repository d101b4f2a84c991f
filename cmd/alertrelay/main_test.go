package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/alertrelay/alertrelay/internal/emulator/cybertrace"
)

// TestMain lets the test binary act as alertrelay itself, so the tests can
// run the real program in a child process and signal it.
func TestMain(m *testing.M) {
	if os.Getenv("ALERTRELAY_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSIGTERMDrainsAndExitsZero runs the daemon as a process, sends it
// events, sends SIGTERM right after the last one and checks that it exits 0
// having written every event.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	cfg := filepath.Join(dir, "alertrelay.yaml")
	out := filepath.Join(dir, "events.ndjson")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state_dir: %s
log: {level: info}
sources:
  ct: {type: cybertrace, listen: "%s", batch: {linger: 2s}}
sinks:
  out: {type: file, path: %s, batch: {timeout: 2s}}
`, dir, addr, out)), 0o600)

	var stderr bytes.Buffer
	cmd := exec.Command(os.Args[0], "run", "--config", cfg)
	cmd.Env = append(os.Environ(), "ALERTRELAY_TEST_MAIN=1")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer cmd.Process.Kill()

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon never listened: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	const n = 5000
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := cybertrace.Push(ctx, cybertrace.PushConfig{Addr: addr, Count: n, Conns: 2, CRLFEvery: 5,
		Flags: cybertrace.FlagReplyBack, Gen: cybertrace.DefaultGenOptions(), Seed: 9})
	if err != nil || st.Lines != n {
		t.Fatalf("push: %d lines, %v", st.Lines, err)
	}
	// Linger and batch timeout are 2 s: the events are still in flight.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("daemon did not exit after SIGTERM\n%s", stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Count(b, []byte("\n")); got != n {
		t.Fatalf("%d events written, want %d\n%s", got, n, stderr.String())
	}
}
