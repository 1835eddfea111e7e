package topology

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/windows"
)

// Kind names what an operator does. It appears in derived operator names
// and in Describe output.
type Kind string

const (
	KindSource          Kind = "source"
	KindSink            Kind = "sink"
	KindMap             Kind = "map"
	KindMapValues       Kind = "map-values"
	KindFilter          Kind = "filter"
	KindFlatMap         Kind = "flat-map"
	KindPeek            Kind = "peek"
	KindMerge           Kind = "merge"
	KindBranch          Kind = "branch"
	KindSelectKey       Kind = "select-key"
	KindProcess         Kind = "process"
	KindCombine         Kind = "combine"
	KindRepartitionSink Kind = "repartition-sink"
	KindRepartitionSrc  Kind = "repartition-source"
)

// Topology is a graph of typed operators under construction. Build it with
// the package functions (Source, Map, To, ...), then call Build with an
// application id to get the runnable Plan.
//
// A Topology is not safe for concurrent construction. Construction errors
// (a duplicate name, a missing serde) are collected and reported together
// by Build, so the DSL calls themselves never fail.
type Topology struct {
	nodes  []*node
	names  map[string]*node
	stores map[string]*node
	errs   []error
}

// New returns an empty Topology.
func New() *Topology {
	return &Topology{names: make(map[string]*node), stores: make(map[string]*node)}
}

type node struct {
	id       int
	name     string
	kind     Kind
	parents  []*node
	children []*node
	// topic is the topic a source reads or a sink writes. For repartition
	// nodes it is the operator-derived suffix; the real topic name is
	// "<app>-<suffix>" (see Plan.topicName).
	topic    string
	internal bool
	stores   []string
	// watermarks is a source's watermark strategy (nil: the default).
	watermarks *windows.Strategy
	// queries are the codecs of the node's queryable stores.
	queries map[string]StoreCodec
	// build creates the node's runtime function for one task. For a
	// source it returns a sourceFunc; for any other node it returns
	// func(*Context, Record[K, V]) error for the node's input types.
	build func(tb *taskBuilder) (any, error)
}

// Stream is a typed stream of records in a Topology. It is a value: passing
// it to several operators fans its records out to each of them.
type Stream[K, V any] struct {
	t   *Topology
	n   *node
	ks  serde.Serde[K]
	vs  serde.Serde[V]
	rek bool // the key changed since the last partitioning by key
}

// Topology returns the topology the stream belongs to.
func (s Stream[K, V]) Topology() *Topology { return s.t }

// Name returns the name of the operator that produces the stream.
func (s Stream[K, V]) Name() string { return s.n.name }

// Opt configures one operator. Named applies to every operator; the other
// options apply to some operators only (WithTimestamps and WithWatermarks
// to Source, Stores and the Queryable options to Process and
// ProcessTimed), and Build reports one given to another operator, naming
// the operator and the option.
type Opt interface{ apply(*opCfg) }

type opCfg struct {
	// kind is the kind of the operator the options are for.
	kind       Kind
	name       string
	stores     []string
	timestamp  any // TimestampExtractor[K, V], checked by Source
	watermarks *windows.Strategy
	queries    map[string]StoreCodec
	// derived says name was derived from the operator's kind and
	// position, not given with Named; rekeyed that the operator reads
	// through a repartition topic named after it.
	derived bool
	rekeyed bool
	// rejected are the options given that do not apply to kind; they
	// had no effect and are reported by add (or the operator).
	rejected []opt
}

// opt is an option: its name, the operator kinds it applies to (none:
// all) described for errors by where, and what it sets.
type opt struct {
	name  string
	only  []Kind
	where string
	set   func(*opCfg)
}

func (o opt) apply(c *opCfg) {
	if len(o.only) > 0 && !slices.Contains(o.only, c.kind) {
		c.rejected = append(c.rejected, o)
		return
	}
	o.set(c)
}

// sourceOpt and processOpt are options for Source only and for Process
// and ProcessTimed only.
func sourceOpt(name string, set func(*opCfg)) Opt {
	return opt{name: name, only: []Kind{KindSource}, where: "Source", set: set}
}

func processOpt(name string, set func(*opCfg)) Opt {
	return opt{name: name, only: []Kind{KindProcess}, where: "Process and ProcessTimed", set: set}
}

// Named gives the operator a stable name. State stores and internal topics
// are named after operators, and derived names ("count-3") change when
// operators are added before them, so every operator whose name reaches
// Kafka must be Named: one with a store or timers, a Repartition, or a
// keyed operation after a key change (its repartition topic). Build
// reports one that is not.
func Named(name string) Opt {
	return opt{name: "Named", set: func(c *opCfg) { c.name = name }}
}

// WithTimestamps sets a Source's event-time extractor. The types must match
// the Source's key and value types; Build reports a mismatch.
func WithTimestamps[K, V any](fn TimestampExtractor[K, V]) Opt {
	return sourceOpt("WithTimestamps", func(c *opCfg) { c.timestamp = fn })
}

// Stores declares the state stores a Process or ProcessTimed operator
// uses (it opens them with Context.Store). Store names are global to the
// topology; each becomes a changelog topic "<app>-<store>-changelog".
// Other operators take no Stores: Build reports one given to them.
func Stores(names ...string) Opt {
	return processOpt("Stores", func(c *opCfg) { c.stores = append(c.stores, names...) })
}

// applyOpts applies opts for an operator of kind, keeping aside the ones
// that do not apply to it.
func applyOpts(kind Kind, opts []Opt) opCfg {
	c := opCfg{kind: kind}
	for _, o := range opts {
		o.apply(&c)
	}
	return c
}

// rejectOpts reports the options given to operator name of kind that do
// not apply to it.
func (t *Topology) rejectOpts(kind Kind, name string, cfg opCfg) {
	for _, o := range cfg.rejected {
		t.errorf("%s operator %q: option %s does not apply (only %s)", kind, name, o.name, o.where)
	}
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,200}$`)

func (t *Topology) errorf(format string, args ...any) {
	t.errs = append(t.errs, invalidf(format, args...))
}

// add registers a node with a user-given or derived name.
func (t *Topology) add(kind Kind, cfg opCfg, parents ...*node) *node {
	n := &node{id: len(t.nodes), kind: kind, name: cfg.name, queries: cfg.queries}
	if n.name == "" {
		n.name = fmt.Sprintf("%s-%d", kind, n.id)
		cfg.derived = true
	}
	t.rejectOpts(kind, n.name, cfg)
	if cfg.derived && (len(cfg.stores) > 0 || cfg.rekeyed) {
		t.unnamed(kind, n.name, cfg.stores, cfg.rekeyed)
	}
	if !validName.MatchString(n.name) {
		t.errorf("operator name %q: use 1-200 characters of [a-zA-Z0-9._-]", n.name)
	}
	if prev, dup := t.names[n.name]; dup {
		t.errorf("operator name %q is used twice (%s and %s): give each a unique Named()", n.name, prev.kind, kind)
	}
	t.names[n.name] = n
	for _, p := range parents {
		if p == nil {
			continue
		}
		n.parents = append(n.parents, p)
		p.children = append(p.children, n)
	}
	for _, st := range cfg.stores {
		if !validName.MatchString(st) {
			t.errorf("store name %q: use 1-200 characters of [a-zA-Z0-9._-]", st)
		}
		if prev, dup := t.stores[st]; dup {
			t.errorf("store %q is declared by both %q and %q: store names must be unique", st, prev.name, n.name)
		}
		t.stores[st] = n
		n.stores = append(n.stores, st)
	}
	for st := range cfg.queries {
		if !slices.Contains(cfg.stores, st) {
			t.errorf("operator %q: store %q is declared queryable but not used: add Stores(%q)", n.name, st, st)
		}
	}
	t.nodes = append(t.nodes, n)
	return n
}

// deriveName names an operator after its kind and position unless Named
// gave it a name.
func (t *Topology) deriveName(kind Kind, cfg *opCfg) {
	if cfg.name == "" {
		cfg.name = fmt.Sprintf("%s-%d", kind, len(t.nodes))
		cfg.derived = true
	}
}

// unnamed reports an operator with state named after it but no name of
// its own: a derived name shifts when an operator is added before it, and
// the next deployment would find none of its state, without a word.
func (t *Topology) unnamed(kind Kind, name string, stores []string, rekeyed bool) {
	var state []string
	for _, st := range stores {
		state = append(state, fmt.Sprintf("store %q", st))
	}
	if rekeyed {
		state = append(state, fmt.Sprintf("repartition topic %q", "<app>-"+name+"-repartition"))
	}
	t.errorf("%s operator %q has state named after it (%s), but no name of its own: %q is derived from its position, "+
		"so adding an operator before it would rename its state and start it empty; give it a stable name with topology.Named(\"...\")",
		kind, name, strings.Join(state, ", "), name)
}

// derive returns a stream of new types produced by node n from parent s.
func derive[K, V, K2, V2 any](s Stream[K, V], n *node, ks serde.Serde[K2], vs serde.Serde[V2], rekeyed bool) Stream[K2, V2] {
	return Stream[K2, V2]{t: s.t, n: n, ks: ks, vs: vs, rek: rekeyed}
}
