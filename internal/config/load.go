// Package config loads alertrelay's YAML configuration: strict decoding
// (unknown keys are errors), ${env:NAME} and ${file:/path} references, and
// error reports that carry the YAML path and line of every problem, all at
// once.
//
// The file has a fixed top level (File); each source and sink block is
// decoded by the component it names through Decode, so this package knows
// nothing about particular sources or sinks.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is the top level of a config file.
type File struct {
	StateDir        string        `yaml:"state_dir"`
	Admin           Admin         `yaml:"admin"`
	Log             Log           `yaml:"log"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	Sources []Component `yaml:"-"`
	Sinks   []Component `yaml:"-"`
}

// Admin is the optional HTTP listener for /healthz, /readyz and /metrics.
type Admin struct {
	Listen string `yaml:"listen"`
	// Pprof mounts Go's profiler under /debug/pprof/ (off by default: it
	// exposes internals and can cost CPU).
	Pprof bool `yaml:"pprof"`
}

// Log configures the daemon's own logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Component is one named block under sources: or sinks:, not yet decoded.
type Component struct {
	Name string
	Type string
	Path string     // "sources.ct"
	Node *yaml.Node // the block's mapping node
}

// Load reads and checks the top level of the config at path. Component
// blocks are decoded later with Decode; their problems are added to the
// same Errors by the caller. The returned error is Errors when the file
// has problems, or an I/O error.
func Load(path string) (*File, Errors, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	f, errs := Parse(b)
	return f, errs, nil
}

// Parse is Load on bytes.
func Parse(b []byte) (*File, Errors) {
	var errs Errors
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, append(errs, yamlError("", err)...)
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{Msg: "config is empty"}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{Line: root.Line, Msg: "config must be a mapping"}}
	}
	expandRefs(root, "", &errs)

	f := &File{}
	f.SetDefaults()
	top := &topLevel{}
	Decode(root, "", &errs, f, top)
	f.Sources = components(&top.Sources, "sources", &errs)
	f.Sinks = components(&top.Sinks, "sinks", &errs)
	for _, e := range f.Validate() {
		errs.Add(root, "", e)
	}
	return f, errs
}

// topLevel holds the component maps while decoding, so that their keys are
// known to the strict check.
type topLevel struct {
	Sources yaml.Node `yaml:"sources"`
	Sinks   yaml.Node `yaml:"sinks"`
}

// SetDefaults fills unset top-level settings.
func (f *File) SetDefaults() {
	f.StateDir = "./data"
	f.Log = Log{Level: "info", Format: "text"}
	f.ShutdownTimeout = 30 * time.Second
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Validate checks the top level.
func (f *File) Validate() []error {
	var errs []error
	if f.StateDir == "" {
		errs = append(errs, Errorf("state_dir", "must not be empty"))
	}
	switch f.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, Errorf("log.level", "want debug, info, warn or error, got %q", f.Log.Level))
	}
	if f.Log.Format != "text" && f.Log.Format != "json" {
		errs = append(errs, Errorf("log.format", "want text or json, got %q", f.Log.Format))
	}
	if f.ShutdownTimeout <= 0 {
		errs = append(errs, Errorf("shutdown_timeout", "want more than 0, got %s", f.ShutdownTimeout))
	}
	if f.Admin.Listen != "" {
		if _, port, err := splitHostPort(f.Admin.Listen); err != nil || port < 0 {
			errs = append(errs, Errorf("admin.listen", "want host:port, got %q", f.Admin.Listen))
		}
	}
	return errs
}

func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", 0, errors.New("missing port")
	}
	p, err := strconv.Atoi(s[i+1:])
	if err != nil || p < 0 || p > 65535 {
		return "", 0, errors.New("bad port")
	}
	return s[:i], p, nil
}

// components splits a sources:/sinks: mapping into named blocks.
func components(n *yaml.Node, section string, errs *Errors) []Component {
	if n.Kind == 0 {
		*errs = append(*errs, &Error{Path: section, Msg: "at least one is required"})
		return nil
	}
	if n.Kind != yaml.MappingNode {
		*errs = append(*errs, &Error{Path: section, Line: n.Line, Msg: "must be a mapping of name: {type: ..., ...}"})
		return nil
	}
	if len(n.Content) == 0 {
		*errs = append(*errs, &Error{Path: section, Line: n.Line, Msg: "at least one is required"})
	}
	var out []Component
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		c := Component{Name: k.Value, Path: section + "." + k.Value, Node: v}
		if !nameRE.MatchString(k.Value) {
			*errs = append(*errs, &Error{Path: c.Path, Line: k.Line, Msg: "name must be lower-case letters, digits, _ or - (at most 64)"})
		}
		if v.Kind != yaml.MappingNode {
			*errs = append(*errs, &Error{Path: c.Path, Line: v.Line, Msg: "must be a mapping with a type"})
			continue
		}
		if t := child(v, "type"); t != nil {
			c.Type = t.Value
		} else {
			*errs = append(*errs, &Error{Path: c.Path + ".type", Line: v.Line, Msg: "required"})
		}
		out = append(out, c)
	}
	return out
}

// refRE matches ${env:NAME} and ${file:/path}.
var refRE = regexp.MustCompile(`\$\{(env|file):([^}]*)\}`)

// expandRefs replaces ${env:NAME} and ${file:/path} in every scalar. A
// missing variable or unreadable file is an error, never an empty string.
func expandRefs(n *yaml.Node, path string, errs *Errors) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = refRE.ReplaceAllStringFunc(n.Value, func(m string) string {
			sub := refRE.FindStringSubmatch(m)
			switch sub[1] {
			case "env":
				v, ok := os.LookupEnv(sub[2])
				if !ok {
					*errs = append(*errs, &Error{Path: path, Line: n.Line, Msg: fmt.Sprintf("environment variable %s is not set", sub[2])})
				}
				return v
			default:
				b, err := os.ReadFile(sub[2])
				if err != nil {
					*errs = append(*errs, &Error{Path: path, Line: n.Line, Msg: fmt.Sprintf("cannot read secret file: %v", err)})
					return ""
				}
				return string(bytes.TrimRight(b, "\r\n"))
			}
		})
		if n.Style == 0 {
			n.Tag = "" // re-resolve, so ${env:PORT} can fill an int
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandRefs(n.Content[i+1], join(path, n.Content[i].Value), errs)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandRefs(c, fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case yaml.DocumentNode, yaml.AliasNode:
		for _, c := range n.Content {
			expandRefs(c, path, errs)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
