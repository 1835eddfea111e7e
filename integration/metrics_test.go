package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
)

// TestMetricsCountDataRecords runs click-count (a repartition topic
// between two sub-topologies, exactly-once) over 15 clicks and checks
// what /metrics says once everything is processed: records in and out
// are exactly the 15 data records per topic, although the repartition
// topic also carries the engine's watermark control records (counted in
// weir_control_records_out_total) and every partition written in
// transactions ends with a commit marker; and the lag of every partition
// read, the repartition topic's included, is 0.
func TestMetricsCountDataRecords(t *testing.T) {
	t.Parallel()
	const (
		in, out = "metrics-clicks", "metrics-counts"
		app     = "metrics-app"
		rep     = app + "-count-repartition"
		parts   = 2
		nRecs   = 15
	)
	c := newCluster(t)
	c.createTopic(in, parts)
	r := startEngine(t, c, builtin.ClickCount(in, out), app, nil)
	waitFor(t, setupTimeout, "the HTTP server to listen", func() bool {
		failIfExited(t, r)
		return r.e.HTTPAddr() != ""
	})

	var recs []*kgo.Record
	for i := range nRecs {
		v, err := json.Marshal(builtin.Click{User: fmt.Sprintf("u%d", i%4), Page: "/", TS: 1_700_000_000_000 + int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: in, Partition: int32(i % parts), Value: v})
	}
	if err := c.manual.ProduceSync(ctxFor(t, setupTimeout), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c.readOutput(app, r.e.Plan().SourceTopics(), out, nRecs)

	counts := map[string]string{
		fmt.Sprintf(`weir_records_in_total{topic=%q}`, in):   "in",
		fmt.Sprintf(`weir_records_in_total{topic=%q}`, rep):  "in",
		fmt.Sprintf(`weir_records_out_total{topic=%q}`, rep): "out",
		fmt.Sprintf(`weir_records_out_total{topic=%q}`, out): "out",
	}
	var lags []string
	for _, topic := range []string{in, rep} {
		for p := range parts {
			lags = append(lags, fmt.Sprintf(`weir_consumer_lag{partition="%d",topic=%q}`, p, topic))
		}
	}
	controls := fmt.Sprintf(`weir_control_records_out_total{topic=%q}`, rep)

	// Counters are updated after the records are acknowledged (out) or
	// processed (in): wait until each has reached nRecs and control records
	// were acknowledged, then check exactly.
	var m map[string]float64
	scrape := func() {
		failIfExited(t, r)
		var err error
		if m, err = eosScrape(r.e.HTTPAddr()); err != nil {
			m = nil
		}
	}
	waitFor(t, outputTimeout, "records in/out to reach "+fmt.Sprint(nRecs), func() bool {
		scrape()
		for series := range counts {
			if m[series] < nRecs {
				return false
			}
		}
		return true
	})
	for series := range counts {
		if m[series] != nRecs {
			t.Errorf("%s = %v, want exactly %d (data records only)", series, m[series], nRecs)
		}
	}

	// Every partition is read to its end: the lag of each is 0. The
	// control records were written and counted apart.
	zero := func() bool {
		scrape()
		if m[controls] == 0 {
			return false
		}
		for _, series := range lags {
			if v, ok := m[series]; !ok || v != 0 {
				return false
			}
		}
		return true
	}
	if !waitUntil(outputTimeout, zero) {
		t.Errorf("the lag of some partition did not reach 0, or no control record was counted, within %v:%s", outputTimeout, metricsDiag(m, counts, lags, controls))
	}
}

// waitUntil polls cond every 20ms until it returns true (true) or timeout
// passes (false).
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func metricsDiag(m map[string]float64, counts map[string]string, lags []string, controls string) string {
	var b strings.Builder
	for series := range counts {
		fmt.Fprintf(&b, "\n%s = %v", series, m[series])
	}
	for _, series := range lags {
		v, ok := m[series]
		fmt.Fprintf(&b, "\n%s = %v (present %v)", series, v, ok)
	}
	fmt.Fprintf(&b, "\n%s = %v", controls, m[controls])
	return b.String()
}
