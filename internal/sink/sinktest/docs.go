package sinktest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/alertrelay/alertrelay/internal/event"
)

// Doc is a JSON document as a test holds it.
type Doc interface{ ~string | ~[]byte }

// Docs returns n documents of size bytes each: head(i), which must open
// the object and end inside an open string member (…,"message":"), then
// the letter 'a'+i%26 repeated, then `"}`. A head longer than size-2 gets
// no padding.
func Docs[D Doc](n, size int, head func(i int) string) []D {
	out := make([]D, n)
	for i := range out {
		h := head(i)
		out[i] = D(h + strings.Repeat(string(rune('a'+i%26)), max(size-len(h)-2, 0)) + `"}`)
	}
	return out
}

// Batch returns a batch of docs, in order.
func Batch[D Doc](docs ...D) *event.Batch {
	size := 0
	for _, d := range docs {
		size += len(d)
	}
	b := event.NewBatch(len(docs), size/max(len(docs), 1))
	for _, d := range docs {
		b.Append([]byte(d))
	}
	return b
}

// goldenFiles are the normalizer's golden files that Golden reads:
// CyberTrace detections, service alerts and lookup-finished events, then
// Cynet alerts.
var goldenFiles = []string{"cybertrace_kv", "cynet_alerts"}

// minGolden is how many documents Golden insists on, so that a truncated
// file fails the tests that rely on it.
const minGolden = 20

// Golden returns the documents of the normalizer's golden files
// (GoldenFile of each of cybertrace_kv and cynet_alerts, in that order):
// real CyberTrace and Cynet output. It fails t if there are fewer than 20.
func Golden[D Doc](t TB) []D {
	t.Helper()
	var out []D
	for _, name := range goldenFiles {
		out = append(out, GoldenFile[D](t, name)...)
	}
	if len(out) < minGolden {
		t.Fatal(fmt.Sprintf("only %d golden documents", len(out)))
	}
	return out
}

// GoldenFile returns the documents of the normalizer's golden file
// internal/normalize/testdata/NAME.golden.ndjson, one a non-blank line,
// trimmed. It fails t if the file cannot be read or holds none.
func GoldenFile[D Doc](t TB, name string) []D {
	t.Helper()
	path, err := goldenPath(name)
	if err != nil {
		t.Fatal(err)
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
		return nil
	}
	var out []D
	for line := range bytes.Lines(data) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, D(bytes.Clone(line))) // each its own copy, free to change
		}
	}
	if len(out) == 0 {
		t.Fatal(fmt.Sprintf("%s: no documents", path))
	}
	return out
}

// goldenPath finds the golden file name from the module's root, the first
// directory up from the working directory (the test's package) that holds
// go.mod.
func goldenPath(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "internal", "normalize", "testdata", name+".golden.ndjson"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory, so no golden file %s", name)
		}
		dir = parent
	}
}

// Detections returns a batch of n CyberTrace-like detections of about
// 1.2 KB: fixed field names, some repeated values, and hashes and
// addresses from a fixed-seed generator, so that compression sees what it
// would in production and every run the same bytes.
func Detections(n int) *event.Batch {
	r := rand.New(rand.NewPCG(1, 2))
	hex := func(k int) string {
		const digits = "0123456789abcdef"
		var sb strings.Builder
		for range k {
			sb.WriteByte(digits[r.IntN(16)])
		}
		return sb.String()
	}
	cats := []string{"KL_Malicious_Hash_MD5", "KL_IP_Reputation", "KL_Malicious_URL", "KL_Phishing_URL", "KL_BotnetCnC_URL"}
	b := event.NewBatch(n, 1100)
	for i := range n {
		md5, sha1, sha256 := hex(32), hex(40), hex(64)
		ip := fmt.Sprintf("%d.%d.%d.%d", r.IntN(223)+1, r.IntN(256), r.IntN(256), r.IntN(256))
		cat := cats[r.IntN(len(cats))]
		doc := fmt.Sprintf(`{"@timestamp":"2025-03-01T08:%02d:%02d.%03dZ","event":{"id":"6b1f0c2a9e%014d","kind":"alert","category":["threat"],"type":["indicator"],"dataset":"cybertrace.detection","module":"cybertrace","provider":"ct","created":"2025-03-01T08:%02d:%02d.%03dZ"},"observer":{"vendor":"Kaspersky","product":"CyberTrace"},"threat":{"feed":{"name":"%s"},"indicator":{"type":"file","name":"%s","provider":"Kaspersky CyberTrace","confidence":"High","file":{"hash":{"md5":"%s"}},"first_seen":"2015-07-10T23:53:00Z","last_seen":"2020-07-14T13:35:00Z"}},"source":{"ip":"%s"},"file":{"hash":{"md5":"%s","sha1":"%s","sha256":"%s"}},"cybertrace":{"category":"%s","matchedIndicator":"%s","md5":"%s","confidence":"100","context":{"MD5":"%s","SHA1":"%s","SHA256":"%s","file_size":"%d","popularity":"%d","threat":"HEUR:Trojan.Win32.Generic"}}}`,
			i/60%60, i%60, i%1000, i, i/60%60, i%60, i%1000, cat, md5, md5, ip, md5, sha1, sha256, cat, md5, md5, md5, sha1, sha256, r.IntN(1<<20), r.IntN(5)+1)
		b.Append([]byte(doc))
	}
	return b
}
