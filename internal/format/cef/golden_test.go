package cef

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the parser's output")

// golden is the JSON rendering of one parsed line.
type golden struct {
	Prefix *string `json:"prefix"`
	Fields []field `json:"fields"`
}

func render(ev *event.Event) golden {
	g := golden{Fields: fieldsOf(ev)}
	if ev.Prefix != nil {
		p := string(ev.Prefix)
		g.Prefix = &p
	}
	return g
}

// readLine reads a one-line .cef file, without its final newline.
func readLine(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

func TestGolden(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.cef")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no testdata/*.cef files")
	}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".cef")
		t.Run(name, func(t *testing.T) {
			line := readLine(t, path)
			var ev event.Event
			if err := Parse(line, &ev); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(render(&ev)); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			goldenPath := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", goldenPath, diff)
			}
		})
	}
}
