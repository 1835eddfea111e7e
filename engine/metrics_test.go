package engine

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestOutCounter: whatever order batches and control records are
// acknowledged or fail in, the data count never exceeds the data records
// acknowledged, and equals them once no control record is in flight.
func TestOutCounter(t *testing.T) {
	type step struct {
		op        string // "produce" a control, "batch" of n records written, "ack"/"fail" a control
		n         int
		data      float64 // data records acknowledged so far (the truth)
		wantData  float64 // the counter after the step
		wantCtrls float64
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"control in its own batch", []step{
			{op: "produce"},
			{op: "batch", n: 1, wantData: 0},
			{op: "ack", wantCtrls: 1},
			{op: "batch", n: 3, data: 3, wantData: 3, wantCtrls: 1},
		}},
		{"control in a batch with data", []step{
			{op: "produce"}, {op: "produce"},
			{op: "batch", n: 5, data: 3, wantData: 3},
			{op: "ack", data: 3, wantData: 3, wantCtrls: 1},
			{op: "ack", data: 3, wantData: 3, wantCtrls: 2},
		}},
		{"a data batch pays first, the control's batch then counts as data", []step{
			{op: "produce"},
			{op: "batch", n: 4, data: 4, wantData: 3},
			{op: "batch", n: 1, data: 4, wantData: 4},
			{op: "ack", data: 4, wantData: 4, wantCtrls: 1},
		}},
		{"a failed control whose debt is unpaid", []step{
			{op: "produce"},
			{op: "fail"},
			{op: "batch", n: 2, data: 2, wantData: 2},
		}},
		{"a failed control whose debt a data batch paid", []step{
			{op: "produce"},
			{op: "batch", n: 2, data: 2, wantData: 1},
			{op: "fail", data: 2, wantData: 2},
		}},
		{"ack before the hook", []step{
			{op: "produce"},
			{op: "ack", wantCtrls: 1},
			{op: "batch", n: 1, wantData: 0, wantCtrls: 1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &outCounter{
				data:    prometheus.NewCounter(prometheus.CounterOpts{Name: "d"}),
				control: prometheus.NewCounter(prometheus.CounterOpts{Name: "c"}),
			}
			for i, s := range tc.steps {
				switch s.op {
				case "produce":
					o.controlProduced()
				case "batch":
					o.written(s.n)
				case "ack":
					o.controlDone(nil)
				case "fail":
					o.controlDone(errors.New("boom"))
				}
				d, c := counterValue(t, o.data), counterValue(t, o.control)
				if d > s.data {
					t.Fatalf("step %d (%s): data %v ahead of the %v acknowledged", i, s.op, d, s.data)
				}
				if d != s.wantData || c != s.wantCtrls {
					t.Fatalf("step %d (%s): data %v, controls %v; want %v, %v", i, s.op, d, c, s.wantData, s.wantCtrls)
				}
			}
			if o.debt.Load() != 0 {
				t.Errorf("debt %d left with nothing in flight", o.debt.Load())
			}
		})
	}
	// A topic without control records counts every record.
	plain := &outCounter{data: prometheus.NewCounter(prometheus.CounterOpts{Name: "p"})}
	plain.written(7)
	if v := counterValue(t, plain.data); v != 7 {
		t.Errorf("plain topic: %v, want 7", v)
	}
}
