package tally

import (
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// state is everything a Tally reports.
type state struct {
	Count, Distinct, Requests int
	IDs                       map[string]int
	Wire                      int64
	Header                    http.Header
}

func snapshot(t *Tally) state {
	return state{
		Count: t.Count(), Distinct: t.Distinct(), Requests: t.Requests(),
		IDs: t.IDs(), Wire: t.BytesOnWire(), Header: t.LastHeader(),
	}
}

func TestTally(t *testing.T) {
	hdr := func(v string) http.Header { return http.Header{"X-Test": {v}} }
	for _, tc := range []struct {
		name string
		do   func(*Tally)
		want state
	}{
		{
			name: "zero value",
			do:   func(*Tally) {},
			want: state{IDs: map[string]int{}},
		},
		{
			name: "events with and without ids",
			do: func(t *Tally) {
				t.Add(3, "a", "b")
				t.Add(2)
				t.Add(1, "a")
			},
			want: state{Count: 6, Distinct: 2, IDs: map[string]int{"a": 2, "b": 1}},
		},
		{
			name: "empty ids are skipped",
			do:   func(t *Tally) { t.Add(3, "", "a", "") },
			want: state{Count: 3, Distinct: 1, IDs: map[string]int{"a": 1}},
		},
		{
			name: "an id without an event",
			do:   func(t *Tally) { t.Add(0, "a") },
			want: state{Distinct: 1, IDs: map[string]int{"a": 1}},
		},
		{
			name: "requests, bytes and the last header",
			do: func(t *Tally) {
				t.Request(hdr("1"))
				t.AddBytes(10)
				t.Request(hdr("2"))
				t.AddBytes(5)
			},
			want: state{Requests: 2, Wire: 15, IDs: map[string]int{}, Header: hdr("2")},
		},
		{
			name: "a request without headers",
			do: func(t *Tally) {
				t.Request(hdr("1"))
				t.Request(nil)
			},
			want: state{Requests: 2, IDs: map[string]int{}},
		},
		{
			name: "reset",
			do: func(t *Tally) {
				t.Request(hdr("1"))
				t.AddBytes(10)
				t.Add(2, "a", "b")
				t.Reset()
			},
			want: state{IDs: map[string]int{}},
		},
		{
			name: "records after reset",
			do: func(t *Tally) {
				t.Request(hdr("1"))
				t.Add(2, "a", "b")
				t.AddBytes(7)
				t.Reset()
				t.Request(hdr("2"))
				t.Add(1, "b")
				t.AddBytes(3)
			},
			want: state{Count: 1, Distinct: 1, Requests: 1, Wire: 3, IDs: map[string]int{"b": 1}, Header: hdr("2")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ty Tally
			tc.do(&ty)
			if diff := cmp.Diff(tc.want, snapshot(&ty)); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCopies checks that the Tally keeps no reference to what it is given
// and gives none to what it holds.
func TestCopies(t *testing.T) {
	var ty Tally
	h := http.Header{"X-Test": {"sent"}}
	ty.Request(h)
	h.Set("X-Test", "changed by the caller")
	ty.Add(1, "a")

	got := ty.LastHeader()
	if v := got.Get("X-Test"); v != "sent" {
		t.Errorf("LastHeader after the caller changed its header: X-Test %q, want %q", v, "sent")
	}
	got.Set("X-Test", "changed by the reader")
	if v := ty.LastHeader().Get("X-Test"); v != "sent" {
		t.Errorf("LastHeader after a reader changed its copy: X-Test %q, want %q", v, "sent")
	}

	ids := ty.IDs()
	ids["a"] = 100
	ids["b"] = 1
	if diff := cmp.Diff(map[string]int{"a": 1}, ty.IDs()); diff != "" {
		t.Errorf("IDs after a reader changed its copy (-want +got):\n%s", diff)
	}
}

// TestConcurrent records from many goroutines while others read and, in
// the second part, reset; run it with -race.
func TestConcurrent(t *testing.T) {
	const writers, rounds = 8, 500
	var ty Tally
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = snapshot(&ty)
			}
		})
	}
	for w := range writers {
		wg.Go(func() {
			h := http.Header{"X-Writer": {strconv.Itoa(w)}}
			for i := range rounds {
				ty.Request(h)
				ty.AddBytes(3)
				ty.Add(2, "shared", "w"+strconv.Itoa(w)+"-"+strconv.Itoa(i))
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	got := snapshot(&ty)
	if got.Count != 2*writers*rounds || got.Requests != writers*rounds || got.Wire != 3*writers*rounds {
		t.Errorf("Count %d, Requests %d, BytesOnWire %d; want %d, %d, %d",
			got.Count, got.Requests, got.Wire, 2*writers*rounds, writers*rounds, 3*writers*rounds)
	}
	if got.Distinct != 1+writers*rounds || got.IDs["shared"] != writers*rounds {
		t.Errorf("Distinct %d, IDs[shared] %d; want %d, %d", got.Distinct, got.IDs["shared"], 1+writers*rounds, writers*rounds)
	}
	if w, err := strconv.Atoi(got.Header.Get("X-Writer")); err != nil || w < 0 || w >= writers {
		t.Errorf("LastHeader %v, want one writer's", got.Header)
	}

	// Reset racing with writers: whatever the interleaving, the counts
	// afterwards are those of the writes that followed the last Reset, so
	// only the absence of races and a final Reset's effect are checked.
	for range writers {
		wg.Go(func() {
			for range rounds {
				ty.Request(nil)
				ty.AddBytes(1)
				ty.Add(1, "x")
			}
		})
	}
	wg.Go(func() {
		for range rounds / 10 {
			ty.Reset()
		}
	})
	wg.Wait()
	ty.Reset()
	if diff := cmp.Diff(state{IDs: map[string]int{}}, snapshot(&ty)); diff != "" {
		t.Errorf("after Reset (-want +got):\n%s", diff)
	}
}
