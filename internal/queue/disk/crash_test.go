package disk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertrelay/alertrelay/internal/queue"
)

const (
	crashChildEnv = "ALERTRELAY_DISKQ_CRASH_DIR"
	crashRoundEnv = "ALERTRELAY_DISKQ_CRASH_ROUND"
)

// crashChild runs in the re-executed test binary: three goroutines push
// small batches and print the IDs of every batch Push accepted ("P ids");
// one goroutine pops, prints what it is about to ack ("A ids"), then acks.
// It runs until the parent kills it.
func crashChild(dir string) {
	round := os.Getenv(crashRoundEnv)
	q, _, err := Open(dir, Options{MaxBytes: 2 << 20, SegmentBytes: 32 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	emit := func(kind string, ids []string) {
		mu.Lock()
		os.Stdout.WriteString(kind + " " + strings.Join(ids, " ") + "\n")
		mu.Unlock()
	}
	pad := strings.Repeat("p", 150)
	for w := range 3 {
		go func() {
			for i := 0; ; i++ {
				var ids []string
				b := batch()
				for k := range 1 + i%5 {
					id := fmt.Sprintf("%s.%d.%d.%d", round, w, i, k)
					ids = append(ids, id)
					b.Append([]byte(`{"id":"` + id + `","pad":"` + pad + `"}`))
				}
				if err := q.Push(context.Background(), b); err != nil {
					fmt.Fprintln(os.Stderr, "child push:", err)
					os.Exit(3)
				}
				emit("P", ids)
			}
		}()
	}
	for {
		l, err := q.Pop(context.Background(), queue.Limits{MaxEvents: 7, MaxBytes: 1 << 20, Linger: time.Millisecond})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child pop:", err)
			os.Exit(4)
		}
		emit("A", docIDs(l.Batch.NDJSON()))
		l.Ack()
		time.Sleep(time.Millisecond) // let a backlog build up
	}
}

func docIDs(ndjson []byte) []string {
	var ids []string
	for _, line := range bytes.Split(bytes.TrimSuffix(ndjson, []byte("\n")), []byte("\n")) {
		var d struct{ ID string }
		if err := json.Unmarshal(line, &d); err != nil || d.ID == "" {
			ids = append(ids, "BAD:"+string(line))
			continue
		}
		ids = append(ids, d.ID)
	}
	return ids
}

// TestCrashAndRestart kills a pushing and acking child process at random
// moments and checks, after each kill, that every record whose Push returned
// and that was not acked is still in the queue.
func TestCrashAndRestart(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(2026, 11))
	pushed := map[string]bool{}
	acked := map[string]bool{}
	for round := range 8 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var p, a int
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				kind, ids, _ := strings.Cut(sc.Text(), " ")
				for _, id := range strings.Fields(ids) {
					if kind == "P" {
						pushed[id] = true
						p++
					} else {
						acked[id] = true
						a++
					}
				}
			}
		}()
		time.Sleep(time.Duration(40+rng.IntN(250)) * time.Millisecond)
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		if strings.TrimSpace(stderr.String()) != "" {
			t.Fatalf("round %d: child failed: %s", round, stderr.String())
		}

		q, rec, err := Open(dir, Options{MaxBytes: 1 << 30})
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		have := map[string]int{}
		for _, d := range rest(t, q) {
			for _, id := range docIDs([]byte(d + "\n")) {
				have[id]++
			}
		}
		lost, dups := 0, 0
		for id := range pushed {
			if !acked[id] && have[id] == 0 {
				lost++
				if lost < 5 {
					t.Errorf("round %d: pushed, not acked, missing: %s", round, id)
				}
			}
		}
		for id, n := range have {
			if strings.HasPrefix(id, "BAD:") {
				t.Errorf("round %d: undecodable document %q", round, id)
			}
			if acked[id] || n > 1 {
				dups++
			}
		}
		t.Logf("round %d: pushed %d, acked %d this run; pending %d (%d redelivered acked/dups); recovery torn %d B, corrupt %d",
			round, p, a, len(have), dups, rec.TornBytes, rec.Corrupt)
		if lost > 0 {
			t.Fatalf("round %d: %d acknowledged records lost", round, lost)
		}
	}
	if len(pushed) == 0 {
		t.Fatal("the children pushed nothing")
	}
}
