package syslog

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/alertrelay/alertrelay/internal/config"
)

// TestExampleConfig decodes the sink block of examples/syslog.yaml as the
// daemon does (SetDefaults, then the YAML, unknown keys reported) and
// validates it.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "syslog.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	block := lookup(t, root.Content[0], "sinks", "siem")
	var cfg Config
	cfg.SetDefaults()
	common := &struct {
		Type   string    `yaml:"type"`
		Inputs []string  `yaml:"inputs"`
		Buffer yaml.Node `yaml:"buffer"`
		Batch  yaml.Node `yaml:"batch"`
		Retry  yaml.Node `yaml:"retry"`
	}{}
	var errs config.Errors
	config.Decode(block, "sinks.siem", &errs, &cfg, common)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if common.Type != "syslog" {
		t.Errorf("type %q", common.Type)
	}
	if es := cfg.Validate(); len(es) > 0 {
		t.Fatal(es)
	}
	if cfg.Network != NetworkTLS || cfg.TLS == nil || cfg.Timeout != 10*time.Second || cfg.SDID != DefaultSDID {
		t.Errorf("decoded %+v", cfg)
	}
}

func lookup(t *testing.T, n *yaml.Node, path ...string) *yaml.Node {
	t.Helper()
	for _, k := range path {
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				n, found = n.Content[i+1], true
				break
			}
		}
		if !found {
			t.Fatalf("no key %q", k)
		}
	}
	return n
}
