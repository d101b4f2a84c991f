package sentinel

import (
	"testing"

	"github.com/alertrelay/alertrelay/internal/config"
)

// TestExampleConfig decodes the sink block of examples/sentinel.yaml the
// way the daemon does (unknown keys are errors) and validates it.
func TestExampleConfig(t *testing.T) {
	t.Setenv("SENTINEL_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47")
	t.Setenv("SENTINEL_CLIENT_ID", "3f2a1c9e-1111-4222-8333-444455556666")
	t.Setenv("SENTINEL_CLIENT_SECRET", testSecret)
	f, errs, err := config.Load("../../../examples/sentinel.yaml")
	if err != nil || len(errs) > 0 {
		t.Fatalf("Load: %v %v", err, errs)
	}
	// The keys every sink block has; the daemon owns their meaning.
	type common struct {
		Type   string         `yaml:"type"`
		Inputs []string       `yaml:"inputs"`
		Buffer map[string]any `yaml:"buffer"`
		Batch  map[string]any `yaml:"batch"`
		Retry  map[string]any `yaml:"retry"`
	}
	found := false
	for _, c := range f.Sinks {
		if c.Type != "sentinel" {
			continue
		}
		found = true
		var cfg Config
		cfg.SetDefaults()
		var cm common
		var derrs config.Errors
		config.Decode(c.Node, c.Path, &derrs, &cfg, &cm)
		if len(derrs) > 0 {
			t.Fatalf("decode: %v", derrs)
		}
		if verrs := cfg.Validate(); len(verrs) > 0 {
			t.Fatalf("validate: %v", verrs)
		}
		if cfg.ClientSecret.Reveal() != testSecret || cfg.Stream != "Custom-AlertRelay_CL" || cfg.APIVersion != "2023-01-01" {
			t.Errorf("decoded %+v", cfg)
		}
		if cm.Buffer["type"] != "disk" || cm.Batch["max_events"] != 1000 {
			t.Errorf("common keys %+v", cm)
		}
	}
	if !found {
		t.Fatal("no sink of type sentinel in the example")
	}
}
