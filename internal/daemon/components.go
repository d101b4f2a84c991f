package daemon

import (
	"sort"
	"strings"

	"github.com/alertrelay/alertrelay/internal/config"
	"github.com/alertrelay/alertrelay/internal/delivery"
	"github.com/alertrelay/alertrelay/internal/pipeline"
	"github.com/alertrelay/alertrelay/internal/sink/elasticsearch"
	"github.com/alertrelay/alertrelay/internal/sink/file"
	httpsink "github.com/alertrelay/alertrelay/internal/sink/http"
	"github.com/alertrelay/alertrelay/internal/sink/kafka"
	"github.com/alertrelay/alertrelay/internal/sink/sentinel"
	"github.com/alertrelay/alertrelay/internal/sink/splunkhec"
	"github.com/alertrelay/alertrelay/internal/sink/stdout"
	"github.com/alertrelay/alertrelay/internal/sink/syslog"
	"github.com/alertrelay/alertrelay/internal/source/cybertrace"
	"github.com/alertrelay/alertrelay/internal/source/cynet"
)

// This file is the component table: the one place that maps a config
// `type` to its settings and its constructor. Adding a source or sink means
// adding an entry here, nothing else.

// validator is what every component config offers.
type validator interface {
	SetDefaults()
	Validate() []error
}

type sourceType struct {
	config func() validator
	build  func(name string, cfg validator, env *env) (pipeline.Source, error)
}

type sinkType struct {
	config func() validator
	build  func(name string, cfg validator, env *env) (pipeline.Sink, error)
	// memoryByDefault: a queue on disk buys nothing for this sink.
	memoryByDefault bool
	// remote: the sink talks to a destination that validate --connect
	// checks (it implements pipeline.Checker).
	remote bool
}

func sourceTypes() map[string]sourceType {
	return map[string]sourceType{
		"cynet": {
			config: func() validator { return &cynet.Config{} },
			build: func(name string, cfg validator, e *env) (pipeline.Source, error) {
				dl, err := e.deadLetter("source", name, false)
				if err != nil {
					return nil, err
				}
				st, err := e.stateStore()
				if err != nil {
					return nil, err
				}
				return cynet.New(name, *cfg.(*cynet.Config), e.deps, st, dl, e.metrics.Source(name), e.health)
			},
		},
		"cybertrace": {
			config: func() validator { return &cybertrace.Config{} },
			build: func(name string, cfg validator, e *env) (pipeline.Source, error) {
				dl, err := e.deadLetter("source", name, false)
				if err != nil {
					return nil, err
				}
				return cybertrace.New(name, *cfg.(*cybertrace.Config), e.deps, dl, e.metrics.Source(name))
			},
		},
	}
}

func sinkTypes() map[string]sinkType {
	return map[string]sinkType{
		"file": {
			config: func() validator { return &file.Config{} },
			build: func(name string, cfg validator, e *env) (pipeline.Sink, error) {
				return file.New(*cfg.(*file.Config), e.depsFor("sink", name))
			},
		},
		"http": {
			config: func() validator { return &httpsink.Config{} },
			build: func(name string, cfg validator, e *env) (pipeline.Sink, error) {
				return httpsink.New(*cfg.(*httpsink.Config), e.depsFor("sink", name))
			},
			remote: true,
		},
		"elasticsearch": {
			config: func() validator { return &elasticsearch.Config{} },
			build: func(name string, cfg validator, e *env) (pipeline.Sink, error) {
				return elasticsearch.New(*cfg.(*elasticsearch.Config), e.depsFor("sink", name))
			},
			remote: true,
		},
		"kafka": {
			config: func() validator { return &kafka.Config{} },
			build: func(name string, cfg validator, e *env) (pipeline.Sink, error) {
				return kafka.New(*cfg.(*kafka.Config), e.depsFor("sink", name))
			},
			remote: true,
		},
		"sentinel": {
			config: func() validator { return &sentinel.Config{} },
			build: func(name string, cfg validator, e *env) (pipeline.Sink, error) {
				return sentinel.New(*cfg.(*sentinel.Config), e.depsFor("sink", name))
			},
			remote: true,
		},
		"syslog": {
			config: func() validator { return &syslog.Config{} },
			build: func(name string, cfg validator, e *env) (pipeline.Sink, error) {
				return syslog.New(*cfg.(*syslog.Config), e.depsFor("sink", name))
			},
			remote: true,
		},
		"splunkhec": {
			config: func() validator { return &splunkhec.Config{} },
			build: func(name string, cfg validator, e *env) (pipeline.Sink, error) {
				return splunkhec.New(*cfg.(*splunkhec.Config), e.depsFor("sink", name))
			},
			remote: true,
		},
		"stdout": {
			config: func() validator { return &stdout.Config{} },
			build: func(name string, cfg validator, e *env) (pipeline.Sink, error) {
				return stdout.New(*cfg.(*stdout.Config), e.stdout, e.depsFor("sink", name)), nil
			},
			memoryByDefault: true,
		},
	}
}

// sourceCommon are the keys every source block has.
type sourceCommon struct {
	Type string `yaml:"type"`
}

// sinkCommon are the keys every sink block has besides its own.
type sinkCommon struct {
	Type            string       `yaml:"type"`
	Inputs          []string     `yaml:"inputs"`
	Buffer          BufferConfig `yaml:"buffer"`
	delivery.Config `yaml:",inline"`
}

// BufferConfig is a sink's queue.
type BufferConfig struct {
	Type     string `yaml:"type"`      // disk (default) or memory (default for stdout)
	MaxBytes int64  `yaml:"max_bytes"` // capacity; default 1 GiB on disk, 64 MiB in memory
	WhenFull string `yaml:"when_full"` // block or drop_newest
}

// Buffer defaults.
const (
	defaultDiskBuffer   = 1 << 30
	defaultMemoryBuffer = 64 << 20
)

// setDefaults fills what the config left out; memoryByDefault is the sink
// type's preference.
func (b *BufferConfig) setDefaults(memoryByDefault bool) {
	if b.Type == "" {
		b.Type = "disk"
		if memoryByDefault {
			b.Type = "memory"
		}
	}
	if b.MaxBytes == 0 {
		b.MaxBytes = defaultDiskBuffer
		if b.Type == "memory" {
			b.MaxBytes = defaultMemoryBuffer
		}
	}
	if b.WhenFull == "" {
		b.WhenFull = "block"
	}
}

func (b *BufferConfig) validate() []error {
	var errs []error
	if b.Type != "memory" && b.Type != "disk" {
		errs = append(errs, config.Errorf("buffer.type", "want disk or memory, got %q", b.Type))
	}
	if b.MaxBytes < 1024 {
		errs = append(errs, config.Errorf("buffer.max_bytes", "want at least 1024, got %d", b.MaxBytes))
	}
	if b.WhenFull != "block" && b.WhenFull != "drop_newest" {
		errs = append(errs, config.Errorf("buffer.when_full", "want block or drop_newest, got %q", b.WhenFull))
	}
	return errs
}

// decoded is a component block after decoding.
type decoded struct {
	config.Component
	cfg  validator
	sink *sinkCommon // sinks only
}

// decode decodes and validates every component block, adding problems to
// errs. It returns what decoded, even with errors, so validate reports all.
func decode(f *config.File, errs *config.Errors) (sources, sinks []decoded) {
	st, kt := sourceTypes(), sinkTypes()
	known := map[string]bool{}
	for _, c := range f.Sources {
		known[c.Name] = true
		t, ok := st[c.Type]
		if !ok {
			if c.Type != "" {
				errs.Add(c.Node, c.Path, config.Errorf("type", "unknown source type %q (known: %s)", c.Type, keys(st)))
			}
			continue
		}
		cfg := t.config()
		cfg.SetDefaults()
		config.Decode(c.Node, c.Path, errs, cfg, &sourceCommon{})
		for _, e := range cfg.Validate() {
			errs.Add(c.Node, c.Path, e)
		}
		sources = append(sources, decoded{Component: c, cfg: cfg})
	}
	for _, c := range f.Sinks {
		t, ok := kt[c.Type]
		if !ok {
			if c.Type != "" {
				errs.Add(c.Node, c.Path, config.Errorf("type", "unknown sink type %q (known: %s)", c.Type, keys(kt)))
			}
			continue
		}
		cfg := t.config()
		cfg.SetDefaults()
		common := &sinkCommon{}
		common.Config.SetDefaults()
		config.Decode(c.Node, c.Path, errs, cfg, common)
		common.Buffer.setDefaults(t.memoryByDefault)
		all := append(cfg.Validate(), common.Config.Validate()...)
		all = append(all, common.Buffer.validate()...)
		for i, in := range common.Inputs {
			if !known[in] {
				all = append(all, config.Errorf("inputs", "entry %d: no source named %q", i, in))
			}
		}
		for _, e := range all {
			errs.Add(c.Node, c.Path, e)
		}
		sinks = append(sinks, decoded{Component: c, cfg: cfg, sink: common})
	}
	return sources, sinks
}

func keys[V any](m map[string]V) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// Check loads the config at path and decodes every component, returning
// every problem found (nil when the config is valid).
func Check(path string) (*config.File, config.Errors, error) {
	f, errs, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if f != nil {
		decode(f, &errs)
	}
	return f, errs.Sorted(), nil
}

// CheckBytes is Check on a config held in memory.
func CheckBytes(b []byte) (*config.File, config.Errors) {
	f, errs := config.Parse(b)
	if f != nil {
		decode(f, &errs)
	}
	return f, errs.Sorted()
}
