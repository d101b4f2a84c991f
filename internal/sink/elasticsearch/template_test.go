package elasticsearch

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/alertrelay/alertrelay/internal/sink/sinktest"
)

var docsDir = filepath.Join("..", "..", "..", "docs", "sinks")

type namedBody struct {
	Name string         `json:"name"`
	Body map[string]any `json:"body"`
}

func loadTemplates(t *testing.T) map[string]namedBody {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(docsDir, "elasticsearch-template.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]namedBody
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("elasticsearch-template.json is not valid JSON: %v", err)
	}
	return m
}

// TestTemplateCoversGoldens: every field of the golden documents has an
// explicit mapping or lies under a flattened vendor object, and the index
// templates match the default data stream and the documented index
// pattern, above the built-in logs-*-* template (priority 100).
func TestTemplateCoversGoldens(t *testing.T) {
	m := loadTemplates(t)
	ct, ok := m["component_template"]
	if !ok || ct.Name == "" {
		t.Fatal("no component_template")
	}
	props := dig(ct.Body, "template", "mappings", "properties")
	if props == nil {
		t.Fatal("component template has no mappings.properties")
	}
	for _, d := range sinktest.Golden[string](t) {
		var v map[string]any
		if err := json.Unmarshal([]byte(d), &v); err != nil {
			t.Fatal(err)
		}
		for _, path := range leaves("", v) {
			if !mapped(props, strings.Split(path, ".")) {
				t.Errorf("field %s of a golden document has no mapping", path)
			}
		}
	}
	for key, pattern := range map[string]string{"index_template_data_stream": "logs-alertrelay-*", "index_template_index": "alertrelay-*"} {
		it := m[key]
		pats, _ := it.Body["index_patterns"].([]any)
		comp, _ := it.Body["composed_of"].([]any)
		prio, _ := it.Body["priority"].(float64)
		if len(pats) != 1 || pats[0] != pattern || len(comp) != 1 || comp[0] != ct.Name || prio <= 100 {
			t.Errorf("%s: patterns %v, composed_of %v, priority %v", key, pats, comp, prio)
		}
	}
	if _, ok := m["index_template_data_stream"].Body["data_stream"]; !ok {
		t.Error("the data stream template does not enable data_stream")
	}
	if !matchesPattern(DefaultDataStream, "logs-alertrelay-*") {
		t.Errorf("default data stream %s is not covered", DefaultDataStream)
	}
}

func matchesPattern(name, pattern string) bool {
	return strings.HasPrefix(name, strings.TrimSuffix(pattern, "*"))
}

func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

// leaves returns the dotted paths of the non-object values of v.
func leaves(prefix string, v map[string]any) []string {
	var out []string
	for k, val := range v {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if obj, ok := val.(map[string]any); ok {
			out = append(out, leaves(p, obj)...)
			continue
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// mapped reports whether path has a mapping in props (or is inside a
// flattened field).
func mapped(props map[string]any, path []string) bool {
	f, ok := props[path[0]].(map[string]any)
	if !ok {
		return false
	}
	if f["type"] == "flattened" {
		return true
	}
	if len(path) == 1 {
		_, typed := f["type"]
		return typed
	}
	sub, ok := f["properties"].(map[string]any)
	return ok && mapped(sub, path[1:])
}

// TestDocEmbedsTemplate: docs/sinks/elasticsearch.md shows the same JSON as
// the template file, so that the two cannot drift apart.
func TestDocEmbedsTemplate(t *testing.T) {
	m := loadTemplates(t)
	md, err := os.ReadFile(filepath.Join(docsDir, "elasticsearch.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []map[string]any
	for _, b := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(md, -1) {
		var v map[string]any
		if json.Unmarshal(b[1], &v) == nil {
			blocks = append(blocks, v)
		}
	}
	for key, nb := range m {
		found := false
		for _, b := range blocks {
			if cmp.Equal(b, nb.Body) {
				found = true
			}
		}
		if !found {
			t.Errorf("the doc has no json block equal to %s (%s) of elasticsearch-template.json", key, nb.Name)
		}
		if !strings.Contains(string(md), nb.Name) {
			t.Errorf("the doc never names %s", nb.Name)
		}
	}
}
