package cybertrace

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const reasonOversize = "line longer than max_line_bytes"

// kvLine returns a key=value detection line of exactly n bytes.
func kvLine(n int) string {
	const base = "category=KL_IP_Reputation matchedIndicator=192.0.2.1 pad="
	if n < len(base)+1 {
		panic("kvLine: too short")
	}
	return base + strings.Repeat("x", n-len(base))
}

// chunk cuts s into pieces of size bytes.
func chunk(s string, size int) []string {
	var out []string
	for len(s) > size {
		out = append(out, s[:size])
		s = s[size:]
	}
	return append(out, s)
}

type framingCase struct {
	name     string
	maxLine  int      // max_line_bytes; 0 means 1024
	chunks   []string // the stream, as the client writes it
	want     []string // event.original of the documents written, in order
	dead     []deadRec
	repaired float64
}

// sessionFlagCases builds a case for every ordered concatenation of distinct
// session flags, followed by one event.
func sessionFlagCases() []framingCase {
	flags := []string{"X-KF-ReplyBack", "X-KF-SendFinishedEvent", "X-KF-SaveStatistic"}
	var perms [][]string
	var rec func(prefix []string, used int)
	rec = func(prefix []string, used int) {
		if len(prefix) > 0 {
			perms = append(perms, append([]string(nil), prefix...))
		}
		for i, f := range flags {
			if used&(1<<i) == 0 {
				rec(append(prefix, f), used|1<<i)
			}
		}
	}
	rec(nil, 0)
	var cases []framingCase
	for _, p := range perms {
		flagStr := strings.Join(p, "")
		cases = append(cases, framingCase{
			name:   "flags " + strings.ReplaceAll(flagStr, "X-KF-", "+"),
			chunks: []string{flagStr + seed1 + "\n"},
			want:   []string{seed1},
		})
	}
	return cases
}

func framingCases() []framingCase {
	max1024 := kvLine(1024)
	over1025 := kvLine(1025)
	huge := kvLine(200_000)
	cases := []framingCase{
		// Session flags (spec B3): sent first, with no newline.
		{name: "flags alone then events", chunks: []string{"X-KF-ReplyBack", seed0 + "\n", seed1 + "\n"}, want: []string{seed0, seed1}},
		{name: "flags glued to first event", chunks: []string{"X-KF-SendFinishedEventX-KF-ReplyBack" + seed0 + "\n" + seed1 + "\n"}, want: []string{seed0, seed1}},
		{name: "flag repeated", chunks: []string{"X-KF-ReplyBackX-KF-ReplyBack" + seed0 + "\n"}, want: []string{seed0}},
		{name: "flag split across writes", chunks: []string{"X-KF-Rep", "lyBackX-KF-Sen", "dFinishedEvent", seed0 + "\n"}, want: []string{seed0}},
		{name: "flags then CRLF", chunks: []string{"X-KF-ReplyBack\r\n" + seed0 + "\n"}, want: []string{seed0}},
		{name: "flags then LF", chunks: []string{"X-KF-SaveStatistic\n" + seed0 + "\n"}, want: []string{seed0}},
		{name: "flags then CR", chunks: []string{"X-KF-SaveStatistic\r" + seed0 + "\n"}, want: []string{seed0}},
		{name: "flags then CRLF split", chunks: []string{"X-KF-ReplyBack", "\r", "\n" + seed0 + "\n"}, want: []string{seed0}},
		{name: "flags then two line breaks", chunks: []string{"X-KF-ReplyBack\n\r\n" + seed0 + "\n"}, want: []string{seed0}},
		{name: "only flags then EOF", chunks: []string{"X-KF-ReplyBackX-KF-SaveStatistic"}},
		// A partial flag at EOF is not a flag: it is handled as the last,
		// unterminated line, fails to parse and is dead-lettered.
		{name: "partial flag at EOF", chunks: []string{"X-KF-Rep"}, dead: []deadRec{{"no key=value pairs", "X-KF-Rep"}}},
		{name: "flag then partial flag at EOF", chunks: []string{"X-KF-ReplyBackX-KF-Sa"}, dead: []deadRec{{"no key=value pairs", "X-KF-Sa"}}},
		// Something that merely starts like a flag is a line; the kv parser
		// takes the text before the first key as the date slot.
		{name: "lookalike flag", chunks: []string{"X-KF-Unknown category=KL_IP_Reputation matchedIndicator=192.0.2.1\n"},
			want: []string{"X-KF-Unknown category=KL_IP_Reputation matchedIndicator=192.0.2.1"}},
		{name: "partial flag then other text", chunks: []string{"X-KF-Rep", "ort category=KL_IP_Reputation matchedIndicator=192.0.2.1\n"},
			want: []string{"X-KF-Report category=KL_IP_Reputation matchedIndicator=192.0.2.1"}},
		// Flags are only recognised at the start of the stream.
		{name: "flag after first line", chunks: []string{seed0 + "\nX-KF-ReplyBack\n" + seed1 + "\n"},
			want: []string{seed0, seed1}, dead: []deadRec{{"no key=value pairs", "X-KF-ReplyBack"}}},

		// Line endings.
		{name: "CRLF and LF", chunks: []string{seed0 + "\r\n" + seed1 + "\n" + alert + "\r\n" + seed2 + "\n"}, want: []string{seed0, seed1, alert, seed2}},
		{name: "CRLF split", chunks: []string{seed0 + "\r", "\n" + seed1 + "\r", "\n"}, want: []string{seed0, seed1}},
		{name: "empty lines", chunks: []string{"\n\r\n\n", seed0 + "\n\n\r\n", seed1 + "\n\n"}, want: []string{seed0, seed1}},
		{name: "final line without LF", chunks: []string{seed0 + "\n" + seed1}, want: []string{seed0, seed1}},
		{name: "final line CR without LF", chunks: []string{seed0 + "\r"}, want: []string{seed0}},

		// max_line_bytes.
		{name: "line of exactly max_line_bytes", chunks: []string{max1024 + "\n" + seed1 + "\n"}, want: []string{max1024, seed1}},
		{name: "line of exactly max_line_bytes at EOF", chunks: []string{seed1 + "\n" + max1024}, want: []string{seed1, max1024}},
		{name: "line of max_line_bytes+1", chunks: []string{over1025 + "\n" + seed1 + "\n"}, want: []string{seed1},
			dead: []deadRec{{reasonOversize, over1025[:1024]}}},
		{name: "line of max_line_bytes+1 at EOF", chunks: []string{seed1 + "\n" + over1025}, want: []string{seed1},
			dead: []deadRec{{reasonOversize, over1025[:1024]}}},
		// The CR of a CRLF counts towards max_line_bytes: a CRLF line of
		// exactly max_line_bytes is dropped.
		{name: "CRLF line of exactly max_line_bytes", chunks: []string{max1024 + "\r\n" + seed1 + "\n"}, want: []string{seed1},
			dead: []deadRec{{reasonOversize, max1024}}},
		{name: "oversize line over many reads", chunks: append(chunk(huge, 4000), "\n"+seed0+"\n"), want: []string{seed0},
			dead: []deadRec{{reasonOversize, huge[:1024]}}},
		{name: "two oversize lines in a row", chunks: []string{over1025 + "\n" + huge + "\n", seed0 + "\n"}, want: []string{seed0},
			dead: []deadRec{{reasonOversize, over1025[:1024]}, {reasonOversize, huge[:1024]}}},
		{name: "flags then oversize line", chunks: []string{"X-KF-ReplyBack" + huge + "\n" + seed0 + "\n"}, want: []string{seed0},
			dead: []deadRec{{reasonOversize, huge[:1024]}}},
		{name: "max_line_bytes 256", maxLine: 256, chunks: []string{kvLine(256) + "\n" + kvLine(257) + "\n" + seed0[:200] + "\n"},
			want: []string{kvLine(256), seed0[:200]}, dead: []deadRec{{reasonOversize, kvLine(257)}}},

		// UTF-8.
		{name: "invalid UTF-8", chunks: []string{"- category=KL_IP_Reputation matchedIndicator=192.0.2.9 usrName=b\xffad\xc3 confidence=100\n"},
			want: []string{"- category=KL_IP_Reputation matchedIndicator=192.0.2.9 usrName=b\uFFFDad\uFFFD confidence=100"}, repaired: 1},
		{name: "multi-byte rune split across writes", chunks: []string{"category=KL_IP_Reputation usrName=J\xc3", "\xb6rg\n"},
			want: []string{"category=KL_IP_Reputation usrName=Jörg"}},
		{name: "invalid UTF-8 in an unparsable line", chunks: []string{"\xff\xfe garbage\n" + seed0 + "\n"}, want: []string{seed0},
			dead: []deadRec{{"no key=value pairs", "\uFFFD\uFFFD garbage"}}, repaired: 1},
	}
	return append(cases, sessionFlagCases()...)
}

// TestFraming drives a real connection with each stream, written three
// ways: in one write, in the case's chunks, and in 7-byte pieces (for the
// first few kilobytes). The result must not depend on how the stream is cut.
func TestFraming(t *testing.T) {
	for _, tc := range framingCases() {
		for _, variant := range []string{"one write", "chunks", "7-byte pieces"} {
			t.Run(tc.name+"/"+variant, func(t *testing.T) {
				t.Parallel()
				var writes []string
				all := strings.Join(tc.chunks, "")
				switch variant {
				case "one write":
					writes = []string{all}
				case "chunks":
					writes = tc.chunks
				default:
					n := min(len(all), 3000)
					writes = append(chunk(all[:n], 7), all[n:])
				}
				runFraming(t, tc, writes)
			})
		}
	}
}

func runFraming(t *testing.T, tc framingCase, writes []string) {
	cfg := testConfig()
	if tc.maxLine > 0 {
		cfg.MaxLineBytes = tc.maxLine
	}
	r := startSource(t, cfg, nil)
	c := r.dial(t)
	c.SetWriteDeadline(time.Now().Add(testTimeout))
	for i, w := range writes {
		if _, err := c.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
		if i < len(writes)-1 {
			time.Sleep(200 * time.Microsecond) // let the server read the piece on its own
		}
	}
	c.Close()
	r.waitServed(t, 1)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	if d := cmp.Diff(tc.want, originals(t, r.rec().get()), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("documents (-want +got):\n%s", d)
	}
	if d := cmp.Diff(tc.dead, r.dl.get(), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("dead letters (-want +got):\n%s", d)
	}
	want := lineMetrics{Events: float64(len(tc.want)), Repaired: tc.repaired}
	for _, d := range tc.dead {
		if d.Reason == reasonOversize {
			want.Oversize++
		} else {
			want.Invalid++
		}
	}
	want.Lines = want.Events + want.Invalid
	if d := cmp.Diff(want, metricsOf(r.m)); d != "" {
		t.Errorf("metrics (-want +got):\n%s", d)
	}
}

// TestOversizeLineMemoryBound sends a 50 MiB line with no LF to a source
// with max_line_bytes 1 MiB, then a normal line. The normal line must
// arrive, and the source must not have buffered the long line: neither the
// bytes allocated during the test nor the peak heap may grow with it.
//
// It is not parallel, so that no other test allocates meanwhile.
func TestOversizeLineMemoryBound(t *testing.T) {
	const (
		lineSize = 50 << 20
		maxLine  = 1 << 20
		bound    = 16 << 20 // the source may allocate a few times max_line_bytes
	)
	cfg := testConfig()
	cfg.MaxLineBytes = maxLine
	r := startSourceLog(t, cfg, nil, discardLogger())
	c := r.dial(t)

	block := make([]byte, 64<<10)
	for i := range block {
		block[i] = "category=KL_Oversize "[i%21]
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// Sample the heap while the line streams.
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	c.SetWriteDeadline(time.Now().Add(3 * testTimeout))
	for sent := 0; sent < lineSize; sent += len(block) {
		if _, err := c.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write([]byte("\n" + seed0 + "\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the line after the oversize one", func() bool { return r.rec().len() == 1 })
	close(stopSampling)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	allocated := after.TotalAlloc - before.TotalAlloc
	grown := int64(peak.Load()) - int64(before.HeapAlloc)
	t.Logf("streamed %d MiB: allocated %.1f MiB, peak heap %+.1f MiB over baseline", lineSize>>20, float64(allocated)/(1<<20), float64(grown)/(1<<20))
	if allocated > bound {
		t.Errorf("allocated %d bytes while streaming a %d-byte line; want < %d (is the line buffered?)", allocated, lineSize, bound)
	}
	if grown > bound {
		t.Errorf("heap grew by %d bytes while streaming a %d-byte line; want < %d", grown, lineSize, bound)
	}

	c.Close()
	r.waitServed(t, 1)
	if got := originals(t, r.rec().get()); !cmp.Equal(got, []string{seed0}) {
		t.Errorf("documents: %q", got)
	}
	dl := r.dl.get()
	if len(dl) != 1 || dl[0].Reason != reasonOversize || dl[0].Data != string(block[:1024]) {
		t.Errorf("dead letters: %d records, first %.80q", len(dl), fmt.Sprint(dl))
	}
	if got := metricsOf(r.m).Oversize; got != 1 {
		t.Errorf("oversize = %v, want 1", got)
	}
}

// TestFramingManyRepeatedFlags: stripFlags accepts any concatenation of
// session flags, repeats included, and consumes each as it is seen, so a run
// of flags longer than the read buffer is not taken for an oversize line.
func TestFramingManyRepeatedFlags(t *testing.T) {
	const line = "category=KL_IP_Reputation matchedIndicator=192.0.2.1"
	runFraming(t, framingCase{
		maxLine: 256,
		chunks:  []string{strings.Repeat("X-KF-ReplyBack", 20) + "\n" + line + "\n"},
		want:    []string{line},
	}, []string{strings.Repeat("X-KF-ReplyBack", 20) + "\n" + line + "\n"})
}
