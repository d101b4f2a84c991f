package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decode decodes the mapping n into each of outs (pointers to structs with
// yaml tags), reporting into errs, with paths under path: keys that none of
// outs knows, and values of the wrong type. Decoding goes on past errors so
// that one run reports everything.
func Decode(n *yaml.Node, path string, errs *Errors, outs ...any) {
	var types []reflect.Type
	for _, o := range outs {
		types = append(types, reflect.TypeOf(o).Elem())
	}
	checkKeys(n, path, types, errs)
	for _, o := range outs {
		if err := n.Decode(o); err != nil {
			*errs = append(*errs, yamlError(path, err, n)...)
		}
	}
}

// Add records a component's validation error e, found in the block at node
// n (path). A *FieldError is placed at the line of its key, or of the
// nearest enclosing key that is present.
func (es *Errors) Add(n *yaml.Node, path string, e error) {
	var fe *FieldError
	if !errors.As(e, &fe) {
		*es = append(*es, &Error{Path: path, Line: n.Line, Msg: e.Error()})
		return
	}
	line := n.Line
	cur := n
	for _, k := range strings.Split(fe.Field, ".") {
		c := child(cur, k)
		if c == nil {
			break
		}
		line, cur = keyLine(cur, k), c
	}
	*es = append(*es, &Error{Path: join(path, fe.Field), Line: line, Msg: fe.Msg})
}

// Sorted returns es ordered by line.
func (es Errors) Sorted() Errors { return es.sorted() }

func keyLine(n *yaml.Node, key string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line
		}
	}
	return n.Line
}

// checkKeys reports keys of mapping n that no field of types declares,
// recursing into nested structs, pointers, slices and maps of structs.
func checkKeys(n *yaml.Node, path string, types []reflect.Type, errs *Errors) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	fields := map[string]reflect.Type{}
	for _, t := range types {
		collectFields(t, fields)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			msg := "unknown key"
			if s := suggest(k.Value, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			*errs = append(*errs, &Error{Path: join(path, k.Value), Line: k.Line, Msg: msg})
			continue
		}
		checkValue(v, join(path, k.Value), ft, errs)
	}
}

func checkValue(v *yaml.Node, path string, t reflect.Type, errs *Errors) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(yaml.Node{}):
	case t.Kind() == reflect.Struct && v.Kind == yaml.MappingNode && !implementsUnmarshaler(t):
		checkKeys(v, path, []reflect.Type{t}, errs)
	case t.Kind() == reflect.Slice && v.Kind == yaml.SequenceNode:
		for i, c := range v.Content {
			checkValue(c, fmt.Sprintf("%s[%d]", path, i), t.Elem(), errs)
		}
	case t.Kind() == reflect.Map && v.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			checkValue(v.Content[i+1], join(path, v.Content[i].Value), t.Elem(), errs)
		}
	}
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func implementsUnmarshaler(t reflect.Type) bool {
	return reflect.PointerTo(t).Implements(unmarshalerType)
}

// collectFields maps yaml key → field type, following ",inline".
func collectFields(t reflect.Type, out map[string]reflect.Type) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			collectFields(f.Type, out)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
}

// suggest returns the known key closest to k, if it is close.
func suggest(k string, fields map[string]reflect.Type) string {
	var names []string
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	best, bestD := "", 3
	for _, n := range names {
		if d := distance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlError turns a yaml error (a *yaml.TypeError holds several) into
// located Errors. n, if given, finds the path of the key on each line.
func yamlError(path string, err error, n ...*yaml.Node) Errors {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	var out Errors
	for _, m := range msgs {
		e := &Error{Path: path, Msg: m}
		if sub := lineRE.FindStringSubmatch(m); sub != nil {
			e.Line, _ = strconv.Atoi(sub[1])
			e.Msg = sub[2]
			if len(n) > 0 {
				if p := pathAtLine(n[0], path, e.Line); p != "" {
					e.Path = p
				}
			}
		}
		out = append(out, e)
	}
	return out
}

// pathAtLine finds the path of the key or value on line.
func pathAtLine(n *yaml.Node, path string, line int) string {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if k.Line == line && (v.Kind == yaml.ScalarNode || v.Line == line) {
				return p
			}
			if r := pathAtLine(v, p, line); r != "" {
				return r
			}
		}
	}
	if n.Kind == yaml.SequenceNode {
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if c.Line == line && c.Kind == yaml.ScalarNode {
				return p
			}
			if r := pathAtLine(c, p, line); r != "" {
				return r
			}
		}
	}
	return ""
}
