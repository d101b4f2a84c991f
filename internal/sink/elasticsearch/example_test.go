package elasticsearch

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestExampleConfig: the sink block of examples/elasticsearch.yaml uses
// exactly Config's keys (plus the common sink keys) and validates.
func TestExampleConfig(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "elasticsearch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Sinks map[string]map[string]any `yaml:"sinks"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	block, ok := file.Sinks["siem"]
	if !ok || block["type"] != "elasticsearch" {
		t.Fatalf("no elasticsearch sink in the example: %v", file.Sinks)
	}
	for _, common := range []string{"type", "buffer", "batch", "retry"} {
		if _, ok := block[common]; !ok {
			t.Errorf("the example lacks %s", common)
		}
		delete(block, common)
	}
	out, err := yaml.Marshal(block)
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	cfg.SetDefaults()
	dec := yaml.NewDecoder(bytes.NewReader(out))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("the example's keys are not Config's: %v", err)
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Errorf("the example does not validate: %v", errs)
	}
	if cfg.Auth == nil || !cfg.Auth.APIKey.IsSet() || cfg.TLS == nil || cfg.TLS.CAFile == "" {
		t.Errorf("auth/tls not decoded: %+v", cfg)
	}
}
