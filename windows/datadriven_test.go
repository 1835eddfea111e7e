package windows

// Data-driven tests: every file in testdata/*.txt is a script run against a
// harness of named Trackers and one Operator over a state.MemStore.
//
// Format. '#' starts a comment line; blank lines are ignored. Every other
// line is a command: a name, then positional words and key=value words.
// Lines starting with "> " directly after a command are its expected
// output, one line each; a command followed by none must print nothing.
// Run with -rewrite to regenerate the expected outputs.
//
// Times: event times, watermarks and durations are integers (ms) or Go
// durations ("10s", "1m30s"). The processing-time clock starts at 0 and
// only moves with "time".
//
// Commands (t=NAME picks a tracker; default "main"):
//
//	tracker [t=] [bound=D] [idle=D] [advance-when-idle]   new Tracker (idle defaults to 0 = off)
//	operator kind=tumbling|hopping|session|count [size=D] [advance=D]
//	         [offset=D] [gap=D] [n=N] [grace=D] [emit=final|early] [agg=sum|collect]
//	                                  new Operator over a new MemStore; values are int64 v=
//	add P [t=] | add-repartition P upstream=N [t=] | remove P [t=]
//	time D                            set the processing clock
//	caught-up P true|false [t=]
//	record [P] key=K ts=T [v=N] [wm=T] [t=]
//	                                  Observe(P) on the tracker if P is given, then
//	                                  Operator.Add with wm= or the tracker's Current
//	                                  (no operator: Observe only). Prints
//	                                  "late key=K ts=T windows=... wm=W" or
//	                                  "partly-late key=K ts=T windows=... wm=W".
//	observe P ts=T [t=]                Observe only (an upstream task's input)
//	control P task=ID tasks=N wm=T [idle] [t=]
//	                                  encode, decode and ObserveControl a control record
//	forward from=T1 to=P task=ID tasks=N [t=]
//	                                  T1.Control(...) sent through the codec to P of t=;
//	                                  prints "control ID wm=W idle=B"
//	watermark [t=]                    prints "wm=W" (W = unknown for math.MinInt64)
//	partitions [t=]                   prints one line per partition status
//	advance [wm=T] [t=]               Operator.Advance(wm= or Current); prints
//	                                  "final|update key=K [s,e) value=V" per result
//	reopen                            new Operator over the same Store (Restore)
//
// TestDataDrivenReopen runs every file again with a "reopen" after every
// "advance" (where, as at a checkpoint barrier, no early update is pending)
// and expects the same output: Restore loses nothing.

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
)

var rewrite = flag.Bool("rewrite", false, "rewrite expected outputs in windows/testdata")

type ddCmd struct {
	line     int
	text     string   // the command line
	expected []string // expected output lines (without "> ")
	pre      []string // comment and blank lines before the command
}

func parseScript(t *testing.T, path string) (cmds []ddCmd, trailer []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var pre []string
	n := 0
	for sc.Scan() {
		n++
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, ">"):
			if len(cmds) == 0 || len(pre) > 0 {
				t.Fatalf("%s:%d: output line without a command", path, n)
			}
			cmds[len(cmds)-1].expected = append(cmds[len(cmds)-1].expected, strings.TrimPrefix(strings.TrimPrefix(l, ">"), " "))
		case strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#"):
			pre = append(pre, l)
		default:
			cmds = append(cmds, ddCmd{line: n, text: l, pre: pre})
			pre = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cmds, pre
}

func TestDataDriven(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			cmds, trailer := parseScript(t, path)
			h := newHarness()
			var out bytes.Buffer
			for i := range cmds {
				c := &cmds[i]
				got, err := h.run(c.text)
				if err != nil {
					t.Fatalf("%s:%d: %s: %v", path, c.line, c.text, err)
				}
				if *rewrite {
					c.expected = got
				} else if !slices.Equal(got, c.expected) {
					t.Errorf("%s:%d: %s\n got:\n  %s\nwant:\n  %s", path, c.line, c.text,
						strings.Join(got, "\n  "), strings.Join(c.expected, "\n  "))
				}
				for _, l := range c.pre {
					out.WriteString(l + "\n")
				}
				out.WriteString(c.text + "\n")
				for _, l := range c.expected {
					out.WriteString("> " + l + "\n")
				}
			}
			for _, l := range trailer {
				out.WriteString(l + "\n")
			}
			if *rewrite {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestDataDrivenReopen(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			cmds, _ := parseScript(t, path)
			plain, reopened := newHarness(), newHarness()
			for _, c := range cmds {
				want, err := plain.run(c.text)
				if err != nil {
					t.Fatalf("%s:%d: %v", path, c.line, err)
				}
				got, err := reopened.run(c.text)
				if err != nil {
					t.Fatalf("%s:%d (reopening): %v", path, c.line, err)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s:%d: %s: with reopen\n  %s\nwithout\n  %s", path, c.line, c.text,
						strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
				if strings.HasPrefix(c.text, "advance") && reopened.op != nil {
					if _, err := reopened.run("reopen"); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// ddOp hides the accumulator type of the harness operator.
type ddOp interface {
	add(key string, v, ts, wm int64) (Late, error)
	advance(wm int64) ([]string, error)
	reopen() error
}

type ddOperator[A any] struct {
	spec  Spec
	store *state.MemStore
	acc   serde.Serde[A]
	agg   Aggregation[int64, A]
	op    *Operator[int64, A]
}

func (d *ddOperator[A]) add(key string, v, ts, wm int64) (Late, error) {
	return d.op.Add([]byte(key), v, ts, wm)
}

func (d *ddOperator[A]) advance(wm int64) ([]string, error) {
	var out []string
	err := d.op.Advance(wm, func(r Result[A]) error {
		kind := "update"
		if r.Final {
			kind = "final"
		}
		out = append(out, fmt.Sprintf("%s key=%s %v value=%v", kind, r.Key, r.Window, r.Value))
		return nil
	})
	return out, err
}

func (d *ddOperator[A]) reopen() error {
	op, err := NewOperator(d.spec, d.store, d.acc, d.agg)
	d.op = op
	return err
}

func newDDOperator[A any](spec Spec, acc serde.Serde[A], agg Aggregation[int64, A]) (ddOp, error) {
	d := &ddOperator[A]{spec: spec, store: state.NewMemStore(), acc: acc, agg: agg}
	return d, d.reopen()
}

type harness struct {
	trackers map[string]*Tracker
	op       ddOp
	now      time.Time
}

var epoch = time.Unix(1_700_000_000, 0) // processing-time origin; only differences matter

func newHarness() *harness {
	return &harness{trackers: map[string]*Tracker{}, now: epoch}
}

type ddArgs struct {
	pos []string
	kv  map[string]string
}

func parseArgs(fields []string) ddArgs {
	a := ddArgs{kv: map[string]string{}}
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			a.kv[k] = v
		} else {
			a.pos = append(a.pos, f)
		}
	}
	return a
}

func (a ddArgs) has(k string) bool { return slices.Contains(a.pos, k) }

func parseTime(s string) (int64, error) {
	if s == "unknown" {
		return Unknown, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	neg := strings.HasPrefix(s, "-")
	d, err := time.ParseDuration(strings.TrimPrefix(s, "-"))
	if err != nil {
		return 0, fmt.Errorf("bad time %q", s)
	}
	if neg {
		return -d.Milliseconds(), nil
	}
	return d.Milliseconds(), nil
}

func (a ddArgs) time(k string) (int64, bool, error) {
	s, ok := a.kv[k]
	if !ok {
		return 0, false, nil
	}
	v, err := parseTime(s)
	return v, true, err
}

func (a ddArgs) dur(k string) (time.Duration, error) {
	v, _, err := a.time(k)
	return time.Duration(v) * time.Millisecond, err
}

func fmtTime(t int64) string {
	if t == Unknown {
		return "unknown"
	}
	return strconv.FormatInt(t, 10)
}

func fmtWindows(ws []Window) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.String())
	}
	return b.String()
}

func partKey(s string) PartitionKey {
	topic, p, _ := strings.Cut(s, "-")
	n, _ := strconv.Atoi(p)
	return PartitionKey{Topic: topic, Partition: int32(n)}
}

func (h *harness) tracker(a ddArgs) (*Tracker, error) {
	name := a.kv["t"]
	if name == "" {
		name = "main"
	}
	tr := h.trackers[name]
	if tr == nil {
		return nil, fmt.Errorf("no tracker %q", name)
	}
	return tr, nil
}

func (h *harness) run(line string) ([]string, error) {
	fields := strings.Fields(line)
	cmd, a := fields[0], parseArgs(fields[1:])
	switch cmd {
	case "tracker":
		bound, err := a.dur("bound")
		if err != nil {
			return nil, err
		}
		idle, err := a.dur("idle")
		if err != nil {
			return nil, err
		}
		tr, err := NewTracker(BoundedOutOfOrderness(bound), IdleTimeout(idle), AdvanceWhenIdle(a.has("advance-when-idle")))
		if err != nil {
			return nil, err
		}
		name := a.kv["t"]
		if name == "" {
			name = "main"
		}
		h.trackers[name] = tr
		return nil, nil

	case "operator":
		return nil, h.newOperator(a)

	case "add", "add-repartition", "remove", "caught-up":
		tr, err := h.tracker(a)
		if err != nil {
			return nil, err
		}
		if len(a.pos) == 0 {
			return nil, fmt.Errorf("%s: missing partition", cmd)
		}
		p := partKey(a.pos[0])
		switch cmd {
		case "add":
			tr.Add(p)
		case "add-repartition":
			n, _ := strconv.Atoi(a.kv["upstream"])
			return nil, tr.AddRepartition(p, n)
		case "remove":
			tr.Remove(p)
		case "caught-up":
			tr.SetCaughtUp(p, len(a.pos) > 1 && a.pos[1] == "true", h.now)
		}
		return nil, nil

	case "time":
		ms, err := parseTime(a.pos[0])
		if err != nil {
			return nil, err
		}
		next := epoch.Add(time.Duration(ms) * time.Millisecond)
		if next.Before(h.now) {
			return nil, fmt.Errorf("time goes backwards")
		}
		h.now = next
		return nil, nil

	case "record":
		ts, ok, err := a.time("ts")
		if err != nil || !ok {
			return nil, fmt.Errorf("record: ts: %v", err)
		}
		var tr *Tracker
		if len(a.pos) > 0 {
			if tr, err = h.tracker(a); err != nil {
				return nil, err
			}
			tr.Observe(partKey(a.pos[0]), ts, h.now)
		}
		if h.op == nil {
			return nil, nil
		}
		wm, ok, err := a.time("wm")
		if err != nil {
			return nil, err
		}
		if !ok {
			wm = Unknown
			if tr != nil {
				wm = tr.Current(h.now)
			} else if tr, err := h.tracker(a); err == nil {
				wm = tr.Current(h.now)
			}
		}
		v := int64(1)
		if s, ok := a.kv["v"]; ok {
			if v, err = strconv.ParseInt(s, 10, 64); err != nil {
				return nil, err
			}
		}
		late, err := h.op.add(a.kv["key"], v, ts, wm)
		if err != nil {
			return nil, err
		}
		if len(late.Windows) == 0 {
			return nil, nil
		}
		kind := "partly-late"
		if late.Late {
			kind = "late"
		}
		return []string{fmt.Sprintf("%s key=%s ts=%d windows=%s wm=%s", kind, a.kv["key"], ts, fmtWindows(late.Windows), fmtTime(late.Watermark))}, nil

	case "observe":
		tr, err := h.tracker(a)
		if err != nil {
			return nil, err
		}
		ts, _, err := a.time("ts")
		if err != nil {
			return nil, err
		}
		tr.Observe(partKey(a.pos[0]), ts, h.now)
		return nil, nil

	case "control":
		tr, err := h.tracker(a)
		if err != nil {
			return nil, err
		}
		wm, _, err := a.time("wm")
		if err != nil {
			return nil, err
		}
		n, _ := strconv.Atoi(a.kv["tasks"])
		c := ControlRecord{UpstreamTask: a.kv["task"], UpstreamTasks: uint32(n), Watermark: wm, Idle: a.has("idle")}
		dec, err := DecodeControl(EncodeControl(c))
		if err != nil {
			return nil, err
		}
		return nil, tr.ObserveControl(partKey(a.pos[0]), dec, h.now)

	case "forward":
		tr, err := h.tracker(a)
		if err != nil {
			return nil, err
		}
		from := h.trackers[a.kv["from"]]
		if from == nil {
			return nil, fmt.Errorf("no tracker %q", a.kv["from"])
		}
		n, _ := strconv.Atoi(a.kv["tasks"])
		dec, err := DecodeControl(EncodeControl(from.Control(a.kv["task"], n, h.now)))
		if err != nil {
			return nil, err
		}
		if err := tr.ObserveControl(partKey(a.kv["to"]), dec, h.now); err != nil {
			return nil, err
		}
		return []string{fmt.Sprintf("control %s wm=%s idle=%t", dec.UpstreamTask, fmtTime(dec.Watermark), dec.Idle)}, nil

	case "watermark":
		tr, err := h.tracker(a)
		if err != nil {
			return nil, err
		}
		return []string{"wm=" + fmtTime(tr.Current(h.now))}, nil

	case "partitions":
		tr, err := h.tracker(a)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, s := range tr.Partitions(h.now) {
			out = append(out, fmt.Sprintf("%s-%d wm=%s caught-up=%t idle=%t repartition=%t",
				s.Partition.Topic, s.Partition.Partition, fmtTime(s.Watermark), s.CaughtUp, s.Idle, s.Repartition))
		}
		return out, nil

	case "advance":
		if h.op == nil {
			return nil, fmt.Errorf("no operator")
		}
		wm, ok, err := a.time("wm")
		if err != nil {
			return nil, err
		}
		if !ok {
			tr, err := h.tracker(a)
			if err != nil {
				return nil, err
			}
			wm = tr.Current(h.now)
		}
		return h.op.advance(wm)

	case "reopen":
		if h.op == nil {
			return nil, fmt.Errorf("no operator")
		}
		return nil, h.op.reopen()
	}
	return nil, fmt.Errorf("unknown command %q", cmd)
}

func (h *harness) newOperator(a ddArgs) error {
	var (
		as  Assigner
		err error
	)
	size, _ := a.dur("size")
	adv, _ := a.dur("advance")
	off, _ := a.dur("offset")
	gap, _ := a.dur("gap")
	switch a.kv["kind"] {
	case "tumbling":
		as, err = Tumbling(size, WithOffset(off))
	case "hopping":
		as, err = Hopping(size, adv, WithOffset(off))
	case "session":
		as, err = Session(gap)
	case "count":
		n, _ := strconv.ParseInt(a.kv["n"], 10, 64)
		as, err = CountWindows(n)
	default:
		return fmt.Errorf("unknown kind %q", a.kv["kind"])
	}
	if err != nil {
		return err
	}
	grace, err := a.dur("grace")
	if err != nil {
		return err
	}
	spec := Spec{Assigner: as, Grace: grace}
	if a.kv["emit"] == "early" {
		spec.Emit = EmitEarly
	}
	switch a.kv["agg"] {
	case "", "sum":
		h.op, err = newDDOperator(spec, serde.Int64(), Sum[int64]())
	case "collect":
		h.op, err = newDDOperator(spec, serde.JSON[[]int64](), Collect[int64]())
	default:
		return fmt.Errorf("unknown agg %q", a.kv["agg"])
	}
	return err
}
