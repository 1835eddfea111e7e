package integration

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
)

// wordCount counts input values through a repartition topic: its state is
// the store "<name>-store" and the topic "<app>-<name>-repartition". With
// also, a second Count of that name counts them too, into the topic also.
func wordCount(in, out, name, also string) *topology.Topology {
	str := serde.String()
	t := topology.New()
	s := topology.Source(t, in, str, str, topology.Named("source"))
	words := topology.SelectKey(s, func(_, v string) (string, error) { return v, nil }, str, topology.Named("by-word"))
	counts := topology.Count(words, topology.Named(name))
	text := topology.MapValues(counts, func(_ string, n int64) (string, error) { return strconv.FormatInt(n, 10), nil }, topology.Named("format"))
	topology.To(topology.WithSerdes(text, str, str), out, topology.Named("sink"))
	if also != "" {
		counts := topology.Count(words, topology.Named(also))
		text := topology.MapValues(counts, func(_ string, n int64) (string, error) { return strconv.FormatInt(n, 10), nil }, topology.Named(also+"-format"))
		topology.To(topology.WithSerdes(text, str, str), also, topology.Named(also+"-out"))
	}
	return t
}

// TestPlanChangeThatOrphansStateIsRefused: an application records the
// state of the plan it runs; a new plan that would leave some of it behind
// (here a renamed Count: new store, new repartition topic) does not start
// unless AllowStateLoss says so, and says what it would leave behind.
//
//  1. Two engines start plan A (Count "count") at once, with nothing
//     recorded: both start. They count "w" to 2.
//  2. Plan B (the Count renamed "tally") is refused, naming A's store,
//     changelog and repartition topic.
//  3. Plan A starts again (the refusal recorded nothing): "w" counts on, 3.
//  4. Plan B with AllowStateLoss starts, on an empty store: "w" is 1.
//  5. Plan A is now refused: B's state would be left behind.
//  6. Plan A with AllowStateLoss starts; its old state is still there: 4.
//  7. Two engines start plan C (A and one more Count) at once: adding
//     state is fine, both start, "w" counts on to 5, and the record is C's.
func TestPlanChangeThatOrphansStateIsRefused(t *testing.T) {
	t.Parallel()
	const (
		in, out = "pc-in", "pc-out"
		app     = "pc-app"
	)
	c := newCluster(t)
	c.createTopic(in, 2)
	planA := func() *topology.Topology { return wordCount(in, out, "count", "") }
	planB := func() *topology.Topology { return wordCount(in, out, "tally", "") }
	planC := func() *topology.Topology { return wordCount(in, out, "count", "extra") }
	allow := func(cfg *engine.Config) { cfg.AllowStateLoss = true }
	var want []string // values of "w" on out, in order
	count := func(phase string, sources []string, next string) {
		t.Helper()
		c.produce([]*kgo.Record{{Topic: in, Value: []byte("w")}})
		want = append(want, next)
		var got []string
		for _, r := range c.readOutput(app, sources, out, len(want)) {
			got = append(got, string(r.Value))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: counts of \"w\" = %q, want %q", phase, got, want)
		}
	}
	refused := func(phase string, top *topology.Topology, orphaned, kept []string) {
		t.Helper()
		cfg := engine.DefaultConfig()
		cfg.Brokers = []string{c.addr}
		cfg.AppID = app
		cfg.Logger = c.log.With("engine", phase)
		cfg.StateDir = t.TempDir()
		e, err := engine.New(top, cfg)
		if err != nil {
			t.Fatalf("%s: engine.New: %v", phase, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
		defer cancel()
		err = e.Run(ctx)
		if !errors.Is(err, engine.ErrStateOrphaned) {
			t.Fatalf("%s: Run = %v, want ErrStateOrphaned", phase, err)
		}
		t.Logf("%s: %v", phase, err)
		for _, w := range append(orphaned, "--allow-state-loss", "WEIR_ALLOW_STATE_LOSS") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: the error does not mention %s:\n%v", phase, w, err)
			}
		}
		for _, k := range kept {
			if strings.Contains(err.Error(), k) {
				t.Errorf("%s: the error mentions %s, which the new plan keeps:\n%v", phase, k, err)
			}
		}
	}
	sourcesA, sourcesB := []string{in, app + "-count-repartition"}, []string{in, app + "-tally-repartition"}
	stateA := []string{`store "count-store"`, `changelog topic "pc-app-count-store-changelog"`, `repartition topic "pc-app-count-repartition"`}
	stateB := []string{`store "tally-store"`, `changelog topic "pc-app-tally-store-changelog"`, `repartition topic "pc-app-tally-repartition"`}

	x, y := startEngine(t, c, planA(), app, nil), startEngine(t, c, planA(), app, nil)
	waitSplit(t, x, y, append(allTasks(0, 2), allTasks(1, 2)...))
	count("1: plan A on two engines", sourcesA, "1")
	count("1: plan A on two engines", sourcesA, "2")
	x.stop(t)
	y.stop(t)

	refused("2: plan B", planB(), stateA, stateB)

	a := startEngine(t, c, planA(), app, nil)
	count("3: plan A again", sourcesA, "3")
	a.stop(t)

	b := startEngine(t, c, planB(), app, allow)
	count("4: plan B allowed to lose state", sourcesB, "1")
	b.stop(t)

	refused("5: plan A after B", planA(), stateB, stateA)

	a = startEngine(t, c, planA(), app, allow)
	count("6: plan A allowed to lose B's state", sourcesA, "4")
	a.stop(t)

	x, y = startEngine(t, c, planC(), app, nil), startEngine(t, c, planC(), app, nil)
	waitSplit(t, x, y, append(append(allTasks(0, 2), allTasks(1, 2)...), allTasks(2, 2)...))
	count("7: plan C on two engines", append(sourcesA, app+"-extra-repartition"), "5")
	x.stop(t)
	y.stop(t)
	recs := c.consumeToEnd(engine.PlanTopic(app))
	const wantC = `{"version":1,"stores":["count-store","extra-store"],` +
		`"changelogs":["pc-app-count-store-changelog","pc-app-extra-store-changelog"],` +
		`"repartitions":["pc-app-count-repartition","pc-app-extra-repartition"]}`
	if len(recs) == 0 || string(recs[len(recs)-1].Value) != wantC {
		var vs []string
		for _, r := range recs {
			vs = append(vs, string(r.Key)+"="+string(r.Value))
		}
		t.Errorf("plan records:\n%s\nwant the last to be %s", strings.Join(vs, "\n"), wantC)
	}
}
