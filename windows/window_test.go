package windows

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestAssignerWindows(t *testing.T) {
	mustA := func(a Assigner, err error) Assigner {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name string
		a    Assigner
		ts   int64
		want []Window
	}{
		{"tumbling start", mustA(Tumbling(10 * time.Second)), 0, []Window{{0, 10000}}},
		{"tumbling last ms", mustA(Tumbling(10 * time.Second)), 9999, []Window{{0, 10000}}},
		{"tumbling boundary", mustA(Tumbling(10 * time.Second)), 10000, []Window{{10000, 20000}}},
		{"tumbling negative", mustA(Tumbling(10 * time.Second)), -1, []Window{{-10000, 0}}},
		{"tumbling offset", mustA(Tumbling(time.Hour, WithOffset(15*time.Minute))), 10 * 60_000, []Window{{-45 * 60_000, 15 * 60_000}}},
		{"tumbling offset after", mustA(Tumbling(time.Hour, WithOffset(15*time.Minute))), 15 * 60_000, []Window{{15 * 60_000, 75 * 60_000}}},
		{"hopping two", mustA(Hopping(10*time.Second, 5*time.Second)), 7000, []Window{{0, 10000}, {5000, 15000}}},
		{"hopping on boundary", mustA(Hopping(10*time.Second, 5*time.Second)), 10000, []Window{{5000, 15000}, {10000, 20000}}},
		{"hopping three", mustA(Hopping(3*time.Second, time.Second)), 2500, []Window{{0, 3000}, {1000, 4000}, {2000, 5000}}},
		{"hopping equal is tumbling", mustA(Hopping(time.Second, time.Second)), 2500, []Window{{2000, 3000}}},
		{"hopping offset", mustA(Hopping(10*time.Second, 5*time.Second, WithOffset(time.Second))), 5500, []Window{{-4000, 6000}, {1000, 11000}}},
		{"hopping negative", mustA(Hopping(10*time.Second, 5*time.Second)), -1, []Window{{-10000, 0}, {-5000, 5000}}},
		{"session", mustA(Session(5 * time.Second)), 1000, []Window{{1000, 6000}}},
		{"count", mustA(CountWindows(3)), 1000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.a.AppendWindows(nil, tt.ts)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("AppendWindows(%d) = %v, want %v", tt.ts, got, tt.want)
			}
			for _, w := range got {
				if tt.a.Kind() != KindCount && !w.Contains(tt.ts) {
					t.Fatalf("%v does not contain %d", w, tt.ts)
				}
			}
		})
	}
}

// Every hopping record is in exactly size/advance windows, all containing it.
func TestHoppingWindowCount(t *testing.T) {
	a, err := Hopping(60*time.Second, 15*time.Second, WithOffset(7*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for ts := int64(-200_000); ts < 200_000; ts += 997 {
		ws := a.AppendWindows(nil, ts)
		if len(ws) != 4 {
			t.Fatalf("ts %d: %d windows %v", ts, len(ws), ws)
		}
		for _, w := range ws {
			if !w.Contains(ts) || w.End-w.Start != 60_000 || (w.Start-7000)%15_000 != 0 {
				t.Fatalf("ts %d: bad window %v", ts, w)
			}
		}
	}
}

func TestAssignerValidation(t *testing.T) {
	tests := []struct {
		name  string
		build func() (Assigner, error)
		field string // "" = valid
	}{
		{"tumbling ok", func() (Assigner, error) { return Tumbling(time.Second) }, ""},
		{"tumbling zero", func() (Assigner, error) { return Tumbling(0) }, "Tumbling.size"},
		{"tumbling negative", func() (Assigner, error) { return Tumbling(-time.Second) }, "Tumbling.size"},
		{"tumbling sub-ms", func() (Assigner, error) { return Tumbling(1500 * time.Microsecond) }, "Tumbling.size"},
		{"tumbling offset = size", func() (Assigner, error) { return Tumbling(time.Second, WithOffset(time.Second)) }, "Tumbling.offset"},
		{"tumbling offset negative", func() (Assigner, error) { return Tumbling(time.Second, WithOffset(-time.Millisecond)) }, "Tumbling.offset"},
		{"hopping ok", func() (Assigner, error) { return Hopping(time.Minute, 10*time.Second) }, ""},
		{"hopping not multiple", func() (Assigner, error) { return Hopping(time.Minute, 7*time.Second) }, "Hopping.size"},
		{"hopping advance > size", func() (Assigner, error) { return Hopping(time.Second, time.Minute) }, "Hopping.size"},
		{"hopping zero advance", func() (Assigner, error) { return Hopping(time.Second, 0) }, "Hopping.advance"},
		{"hopping offset >= advance", func() (Assigner, error) {
			return Hopping(time.Minute, 10*time.Second, WithOffset(10*time.Second))
		}, "Hopping.offset"},
		{"session ok", func() (Assigner, error) { return Session(time.Minute) }, ""},
		{"session zero", func() (Assigner, error) { return Session(0) }, "Session.gap"},
		{"count ok", func() (Assigner, error) { return CountWindows(1) }, ""},
		{"count zero", func() (Assigner, error) { return CountWindows(0) }, "CountWindows.n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.build()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var se *SpecError
			if !errors.As(err, &se) || se.Field != tt.field || !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error %v, want SpecError on %s", err, tt.field)
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	tum, _ := Tumbling(time.Second)
	tests := []struct {
		name   string
		spec   Spec
		fields []string
	}{
		{"ok", Spec{Assigner: tum, Grace: time.Second, Emit: EmitEarly}, nil},
		{"zero", Spec{}, []string{"Spec.Assigner"}},
		{"everything wrong", Spec{Grace: -1, Emit: 9}, []string{"Spec.Assigner", "Spec.Grace", "Spec.Emit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var se *SpecError
					if !errors.As(e, &se) {
						t.Fatalf("not a SpecError: %v", e)
					}
					got = append(got, se.Field)
				}
			}
			if !slices.Equal(got, tt.fields) {
				t.Fatalf("fields %v, want %v (%v)", got, tt.fields, err)
			}
		})
	}
}

func TestTrackerValidation(t *testing.T) {
	tests := []struct {
		name string
		s    Strategy
		opts []TrackerOpt
		ok   bool
	}{
		{"default", Monotonous(), nil, true},
		{"bounded", BoundedOutOfOrderness(time.Second), []TrackerOpt{IdleTimeout(0), AdvanceWhenIdle(true)}, true},
		{"negative bound", BoundedOutOfOrderness(-time.Second), nil, false},
		{"sub-ms bound", BoundedOutOfOrderness(time.Microsecond), nil, false},
		{"negative idle", Monotonous(), []TrackerOpt{IdleTimeout(-1)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTracker(tt.s, tt.opts...)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidSpec)) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	tr, _ := NewTracker(Monotonous())
	if err := tr.AddRepartition(PartitionKey{"r", 0}, 0); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("AddRepartition(0) = %v", err)
	}
	if err := tr.ObserveControl(PartitionKey{"r", 0}, ControlRecord{UpstreamTask: "x"}, time.Now()); !IsInvalidControl(err) {
		t.Fatalf("ObserveControl(invalid) = %v", err)
	}
}

func TestStrategy(t *testing.T) {
	tests := []struct {
		s         Strategy
		max, want int64
	}{
		{Monotonous(), 1000, 1000},
		{BoundedOutOfOrderness(250 * time.Millisecond), 1000, 750},
		{BoundedOutOfOrderness(time.Second), Unknown, Unknown},
		{BoundedOutOfOrderness(time.Second), Unknown + 5, Unknown},
	}
	for _, tt := range tests {
		if got := tt.s.Watermark(tt.max); got != tt.want {
			t.Errorf("%v.Watermark(%d) = %d, want %d", tt.s.Bound(), tt.max, got, tt.want)
		}
	}
}

// The task watermark never goes backwards, whatever happens to partitions.
func TestTrackerMonotone(t *testing.T) {
	tr, _ := NewTracker(BoundedOutOfOrderness(time.Second), IdleTimeout(time.Second))
	now := time.Unix(0, 0)
	p0, p1 := PartitionKey{"in", 0}, PartitionKey{"in", 1}
	tr.Observe(p0, 10_000, now)
	tr.Observe(p1, 20_000, now)
	if got := tr.Current(now); got != 9000 {
		t.Fatalf("wm %d", got)
	}
	tr.Observe(p0, 5000, now) // older record: partition watermark stays
	tr.Remove(p0)
	if got := tr.Current(now); got != 19_000 {
		t.Fatalf("wm %d", got)
	}
	tr.Add(p0) // re-assigned, unknown: holds the minimum but cannot lower it
	if got := tr.Current(now); got != 19_000 {
		t.Fatalf("wm %d after re-add", got)
	}
	tr.Seed(p0, 30_000)
	tr.Observe(p1, 40_000, now)
	if got := tr.Current(now); got != 30_000 {
		t.Fatalf("wm %d after seed", got)
	}
}

// A task restarted from a checkpoint seeds what each upstream task said:
// an upstream task that restarted too, with quiet input, announces
// Unknown, and must not hold the partition back (the crash test's stall:
// the downstream waited for a watermark nobody would announce again).
func TestTrackerSeedUpstream(t *testing.T) {
	now := time.Unix(0, 0)
	r := PartitionKey{"rep", 3}
	seeded := func() *Tracker {
		tr, err := NewTracker(Monotonous())
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.AddRepartition(r, 2); err != nil {
			t.Fatal(err)
		}
		tr.Seed(r, 5000)
		tr.SeedUpstream(r, "0_0", 5000)
		tr.SeedUpstream(r, "0_1", 7000)
		return tr
	}

	tr := seeded()
	if got := tr.Current(now); got != 5000 {
		t.Fatalf("seeded: wm %d, want 5000", got)
	}
	// 0_0 restarted and knows nothing yet; 0_1 moved on.
	for _, c := range []ControlRecord{
		{Version: ControlVersion, UpstreamTask: "0_0", UpstreamTasks: 2, Watermark: Unknown},
		{Version: ControlVersion, UpstreamTask: "0_1", UpstreamTasks: 2, Watermark: 9000},
	} {
		if err := tr.ObserveControl(r, c, now); err != nil {
			t.Fatal(err)
		}
	}
	if got := tr.Current(now); got != 5000 {
		t.Fatalf("after Unknown from 0_0: wm %d, want 5000", got)
	}
	if err := tr.ObserveControl(r, ControlRecord{Version: ControlVersion, UpstreamTask: "0_0", UpstreamTasks: 2, Watermark: 8000}, now); err != nil {
		t.Fatal(err)
	}
	if got := tr.Current(now); got != 8000 {
		t.Fatalf("after 8000 from 0_0: wm %d, want 8000", got)
	}
	ps := tr.Partitions(now)
	if len(ps) != 1 || ps[0].Upstream["0_0"] != 8000 || ps[0].Upstream["0_1"] != 9000 || len(ps[0].Upstream) != 2 {
		t.Fatalf("Partitions = %+v, want upstream 0_0=8000 0_1=9000", ps)
	}

	// A seed below what was announced since does not lower it.
	tr.SeedUpstream(r, "0_1", 1000)
	if got := tr.Partitions(now)[0].Upstream["0_1"]; got != 9000 {
		t.Fatalf("seed below the announced value: 0_1 = %d, want 9000", got)
	}
}

// TestChecked: Checked keeps a valid assigner as it is and turns a
// constructor's error into an assigner that holds it (Err), so that the
// operator using it reports it at Build.
func TestChecked(t *testing.T) {
	tum, err := Tumbling(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := Checked(Tumbling(time.Second)); got != tum || got.Err() != nil {
		t.Errorf("Checked(Tumbling(1s)) = %v (err %v), want %v", got, got.Err(), tum)
	}
	_, want := Session(-time.Second)
	got := Checked(Session(-time.Second))
	if got.Err() == nil || got.Err().Error() != want.Error() || !errors.Is(got.Err(), ErrInvalidSpec) {
		t.Errorf("Checked(Session(-1s)).Err() = %v, want %v (an ErrInvalidSpec)", got.Err(), want)
	}
	if got.String() != "invalid assigner: "+want.Error() {
		t.Errorf("String() = %q", got.String())
	}
	if err := (Spec{Assigner: got}).Validate(); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("Validate() = %v, want an ErrInvalidSpec", err)
	}
}
