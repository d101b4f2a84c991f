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

// TestSIGTERMKeepsEverything runs the daemon as a process, sends it events,
// sends SIGTERM right after the last one and checks that it exits 0; what
// the file sink had not taken yet stays in the disk queue, and a second run
// delivers it, so every event ends up in the file exactly once.
func TestSIGTERMKeepsEverything(t *testing.T) {
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

	d := startDaemon(t, cfg, addr)

	const n = 5000
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := cybertrace.Push(ctx, cybertrace.PushConfig{Addr: addr, Count: n, Conns: 2, CRLFEvery: 5,
		Flags: cybertrace.FlagReplyBack, Gen: cybertrace.DefaultGenOptions(), Seed: 9})
	if err != nil || st.Lines != n {
		t.Fatalf("push: %d lines, %v", st.Lines, err)
	}
	// Linger and batch timeout are 2 s: the events are still in flight.
	d.stop(t, syscall.SIGTERM)
	first := countLines(t, out)
	t.Logf("first run wrote %d of %d events before stopping", first, n)

	d = startDaemon(t, cfg, addr)
	deadline := time.Now().Add(20 * time.Second)
	for countLines(t, out) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	d.stop(t, syscall.SIGTERM)
	if got := countLines(t, out); got != n {
		t.Fatalf("%d events written over two runs, want %d\n%s", got, n, d.stderr.String())
	}
}

type child struct {
	cmd    *exec.Cmd
	done   chan error
	stderr *bytes.Buffer
}

// startDaemon runs `alertrelay run --config cfg` as a child process and
// waits until addr accepts connections.
func startDaemon(t *testing.T, cfg, addr string) *child {
	t.Helper()
	c := startChild(t, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon never listened: %s", c.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startChild runs `alertrelay run --config cfg` as a child process.
func startChild(t *testing.T, cfg string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "run", "--config", cfg), done: make(chan error, 1), stderr: &bytes.Buffer{}}
	c.cmd.Env = append(os.Environ(), "ALERTRELAY_TEST_MAIN=1")
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { c.cmd.Process.Kill() })
	return c
}

// stop signals the child and waits for it; SIGTERM must end in exit 0.
func (c *child) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if sig == syscall.SIGTERM && err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, c.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not exit after %v\n%s", sig, c.stderr.String())
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}
