package state

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// crashEnv names the state file a re-executed test binary commits to until
// it is killed.
const crashEnv = "ALERTRELAY_STATE_CRASH_CHILD"

const (
	crashSource  = "acme"
	crashKeys    = 250 // keys per commit
	crashMaxRuns = 100000
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		os.Exit(crashChild(path))
	}
	os.Exit(m.Run())
}

// crashCursor is the cursor of commit i.
func crashCursor(i int) Cursor { return Cursor{LastSeen: t0.Add(time.Duration(i) * time.Second)} }

func crashIndex(c Cursor) int { return int(c.LastSeen.Sub(t0) / time.Second) }

// crashChild resumes after the stored cursor and commits forever, printing
// each commit's number once Commit has returned.
func crashChild(path string) int {
	s, err := Open(path, Options{Timeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	c, ok, err := s.Cursor(crashSource)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	start := 1
	if ok {
		start = crashIndex(c) + 1
	}
	for i := start; i < crashMaxRuns; i++ {
		if err := s.Commit(crashSource, crashCursor(i), keysFor(i, crashKeys)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Fprintln(os.Stdout, i) // unbuffered: one write(2) per commit
	}
	return 0
}

// TestCrashDuringCommit SIGKILLs a process that commits in a loop, at a
// random instant, several times over the same file, and checks after each
// kill that the stored cursor is the last one the child reported or the
// one it was about to report (the commit was durable, the print had not
// happened), never further, and that the keys of every commit up to the
// stored cursor are present and the next commit's are absent.
func TestCrashDuringCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "state.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	printed := 0
	for round := range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 5 + rng.IntN(20) // commits to see before the kill
		sc := bufio.NewScanner(out)
		seen, killed := 0, false
		for sc.Scan() {
			n, err := strconv.Atoi(sc.Text())
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			if n != printed+1 {
				t.Fatalf("round %d: child committed %d after %d", round, n, printed)
			}
			printed = n
			seen++
			if seen == killAfter && !killed {
				// Land anywhere inside the next commit (one commit is a
				// few milliseconds of writes and fsyncs).
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		cmd.Wait()
		cancel()
		if !killed {
			t.Fatalf("round %d: child exited after %d commits without being killed", round, seen)
		}

		s, err := Open(path, Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c, ok, err := s.Cursor(crashSource)
		if err != nil || !ok {
			t.Fatalf("round %d: cursor ok=%v err=%v", round, ok, err)
		}
		stored := crashIndex(c)
		if stored != printed && stored != printed+1 {
			t.Fatalf("round %d: stored cursor %d, child had printed %d", round, stored, printed)
		}
		for i := 1; i <= stored+1; i++ {
			got, err := s.Seen(crashSource, keysFor(i, crashKeys))
			if err != nil {
				t.Fatal(err)
			}
			for j, g := range got {
				if want := i <= stored; g != want {
					t.Fatalf("round %d: commit %d key %d seen=%v, want %v (stored cursor %d)", round, i, j, g, want, stored)
				}
			}
		}
		if n, _ := s.Count(crashSource); n != stored*crashKeys {
			t.Errorf("round %d: %d records, want %d", round, n, stored*crashKeys)
		}
		s.Close()
		t.Logf("round %d: killed after print %d, stored cursor %d", round, printed, stored)
		printed = stored
	}
}
