package httpclient

import (
	"bytes"
	stdgzip "compress/gzip"
	"io"
	"os"
	"testing"
)

func TestGzipRoundTrip(t *testing.T) {
	var g Gzip
	for _, parts := range [][][]byte{
		nil,
		{[]byte("one")},
		{[]byte(`{"a":1}` + "\n"), []byte(`{"b":2}` + "\n"), bytes.Repeat([]byte("x"), 1<<20)},
	} {
		z := g.Compress(parts...)
		r, err := stdgzip.NewReader(bytes.NewReader(z))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if want := bytes.Join(parts, nil); !bytes.Equal(got, want) {
			t.Fatalf("round trip: %d bytes, want %d", len(got), len(want))
		}
	}
}

func BenchmarkGzip(b *testing.B) {
	doc, err := os.ReadFile("../normalize/testdata/cybertrace_kv.golden.ndjson")
	if err != nil {
		b.Fatal(err)
	}
	var body []byte
	for len(body) < 1<<20 {
		body = append(body, doc...)
	}
	b.Run("klauspost", func(b *testing.B) {
		var g Gzip
		b.SetBytes(int64(len(body)))
		var n int
		for b.Loop() {
			n = len(g.Compress(body))
		}
		b.ReportMetric(float64(len(body))/float64(n), "ratio")
	})
	b.Run("stdlib", func(b *testing.B) {
		var buf bytes.Buffer
		w, _ := stdgzip.NewWriterLevel(&buf, stdgzip.BestSpeed)
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			buf.Reset()
			w.Reset(&buf)
			w.Write(body)
			w.Close()
		}
		b.ReportMetric(float64(len(body))/float64(buf.Len()), "ratio")
	})
}
