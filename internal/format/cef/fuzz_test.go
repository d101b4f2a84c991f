package cef

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/event"
)

// encode writes the header and extension fields of ev back as CEF.
func encode(t *testing.T, ev *event.Event) []byte {
	t.Helper()
	var h Header
	var out []byte
	for _, f := range ev.Fields {
		if f.Group != event.GroupHeader {
			continue
		}
		v := string(f.Value)
		switch string(f.Key) {
		case "version":
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Skip("version does not fit an int")
			}
			h.Version = n
		case "deviceVendor":
			h.DeviceVendor = v
		case "deviceProduct":
			h.DeviceProduct = v
		case "deviceVersion":
			h.DeviceVersion = v
		case "signatureId":
			h.SignatureID = v
		case "name":
			h.Name = v
		case "severity":
			h.Severity = v
		}
	}
	out = AppendHeader(out, h)
	for _, f := range ev.Fields {
		if f.Group == event.GroupExtension {
			out = AppendExtension(out, string(f.Key), f.Value)
		}
	}
	return out
}

var crlf = strings.NewReplacer("\n", " ", "\r", " ")

// normalised returns the fields of ev as AppendHeader would let them come
// back: CR/LF in header values become spaces, the version loses leading
// zeros.
func normalised(ev *event.Event) []field {
	fs := fieldsOf(ev)
	for i := range fs {
		if fs[i].Group != "header" {
			continue
		}
		if fs[i].Key == "version" {
			n, _ := strconv.Atoi(fs[i].Value)
			fs[i].Value = strconv.Itoa(n)
			continue
		}
		fs[i].Value = crlf.Replace(fs[i].Value)
	}
	return fs
}

func FuzzParse(f *testing.F) {
	paths, err := filepath.Glob("testdata/*")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // a directory such as testdata/fuzz
		}
		f.Add(b)
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		var ev event.Event
		if err := Parse(line, &ev); err != nil {
			if len(ev.Fields) != 0 {
				t.Fatalf("failed Parse left %d fields", len(ev.Fields))
			}
			return
		}
		if !bytes.Equal(line, orig) {
			t.Fatal("Parse modified its input")
		}
		for _, fl := range ev.Fields {
			// Header keys are constants; everything else comes from the
			// line or from scratch, which is as long as the line.
			if fl.Group != event.GroupHeader && len(fl.Key) > len(line) || len(fl.Value) > len(line) {
				t.Fatalf("field %q=%q longer than the line", fl.Key, fl.Value)
			}
			if len(fl.Key) == 0 {
				t.Fatal("empty key")
			}
			if fl.Group != event.GroupHeader && (len(fl.Value) == 0 || string(fl.Value) == "-") {
				t.Fatalf("empty value kept for %q", fl.Key)
			}
		}
		if len(ev.Prefix) > len(line) {
			t.Fatal("prefix longer than the line")
		}

		enc := encode(t, &ev)
		var ev2 event.Event
		if err := Parse(enc, &ev2); err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		if ev2.Prefix != nil {
			t.Fatalf("re-parse found prefix %q", ev2.Prefix)
		}
		want, got := normalised(&ev), fieldsOf(&ev2)
		if slices.Equal(want, got) {
			return
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("round trip of %q via %q (-first +second):\n%s", line, enc, diff)
		}
	})
}
