package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type tlsBlock struct {
	CertFile string `yaml:"cert_file"`
}

type testSource struct {
	Type    string        `yaml:"type"`
	Listen  string        `yaml:"listen"`
	Port    int           `yaml:"port"`
	Idle    time.Duration `yaml:"idle"`
	TLS     *tlsBlock     `yaml:"tls"`
	Secret  Secret        `yaml:"secret"`
	Inputs  []string      `yaml:"inputs"`
	Batches []tlsBlock    `yaml:"batches"`
}

func TestParseReportsEverythingWithLines(t *testing.T) {
	t.Setenv("AR_PORT", "9999")
	cfg := `state_dir: ./d
log: {level: loud, format: text}
admni: {listen: x}
sources:
  ct:
    type: t
    listen: ${env:AR_PORT_MISSING}
    port: ${env:AR_PORT}
    idle: forever
    tls:
      cert_fil: a
    batches:
      - cert_file: ok
      - certfile: typo
sinks: {}
`
	f, errs := Parse([]byte(cfg))
	var src testSource
	c := f.Sources[0]
	Decode(c.Node, c.Path, &errs, &src)
	errs.Add(c.Node, c.Path, Errorf("tls.cert_file", "required"))
	var got []string
	for _, e := range errs.Sorted() {
		got = append(got, e.Error())
	}
	want := []string{
		`line 2: log.level: want debug, info, warn or error, got "loud"`,
		`line 3: admni: unknown key (did you mean "admin"?)`,
		`line 7: sources.ct.listen: environment variable AR_PORT_MISSING is not set`,
		"line 9: sources.ct.idle: cannot unmarshal !!str `forever` into time.Duration",
		`line 10: sources.ct.tls.cert_file: required`,
		`line 11: sources.ct.tls.cert_fil: unknown key (did you mean "cert_file"?)`,
		`line 14: sources.ct.batches[1].certfile: unknown key (did you mean "cert_file"?)`,
		`line 15: sinks: at least one is required`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
	if src.Port != 9999 {
		t.Errorf("port from ${env:} = %d", src.Port)
	}
}

func TestSecretFromFileIsRedacted(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(p, []byte("hunter2\n"), 0o600)
	f, errs := Parse([]byte(fmt.Sprintf("sources: {a: {type: t, secret: '${file:%s}'}}\nsinks: {b: {type: file}}\n", p)))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	var src testSource
	Decode(f.Sources[0].Node, "sources.a", &errs, &src)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if src.Secret.Reveal() != "hunter2" {
		t.Fatalf("secret = %q", src.Secret.Reveal())
	}
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "secret", src.Secret, "cfg", src)
	fmt.Fprintf(&sb, "%v %+v %#v %s", src.Secret, src, src.Secret, src.Secret)
	if strings.Contains(sb.String(), "hunter2") {
		t.Fatalf("secret leaked: %s", sb.String())
	}
}

func TestComponentsKeepOrderAndNeedType(t *testing.T) {
	f, errs := Parse([]byte("sources: {b: {type: x}, a: {listen: y}, Bad: {type: z}}\nsinks: {s: {type: file}}\n"))
	var names []string
	for _, c := range f.Sources {
		names = append(names, c.Name+":"+c.Type)
	}
	if d := cmp.Diff([]string{"b:x", "a:", "Bad:z"}, names); d != "" {
		t.Error(d)
	}
	if len(errs) != 2 {
		t.Fatalf("want 2 errors (missing type, bad name), got %v", errs)
	}
}

func TestParseSyntaxError(t *testing.T) {
	_, errs := Parse([]byte("sources:\n  a: [\n"))
	if len(errs) != 1 || errs[0].Line == 0 {
		t.Fatalf("errs = %v", errs)
	}
}

func TestSecretDecodesFromYAMLScalar(t *testing.T) {
	f, errs := Parse([]byte("sources: {a: {type: t, secret: plain-value}}\nsinks: {b: {type: file}}\n"))
	var src testSource
	Decode(f.Sources[0].Node, "sources.a", &errs, &src)
	if len(errs) != 0 || src.Secret.Reveal() != "plain-value" {
		t.Fatalf("errs %v, secret %q", errs, src.Secret.Reveal())
	}
}
