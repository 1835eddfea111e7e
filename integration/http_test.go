package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/engine"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// metricValue returns the value of the sample named exactly series (name
// and labels as Prometheus' text format prints them) in a /metrics body.
func metricValue(body, series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return v, err == nil
	}
	return 0, false
}

// TestHTTPEndpoints checks a running engine's HTTP server: /healthz is 200
// while it runs, /readyz 200 once it is ready, /metrics counts exactly the
// records consumed per topic and produced per output topic, and /api/tasks
// lists the tasks the engine owns.
func TestHTTPEndpoints(t *testing.T) {
	t.Parallel()
	const (
		in, out = "http-in", "http-out"
		app     = "http-app"
		nRecs   = 1234
	)
	c := newCluster(t)
	c.createTopic(in, 8)
	r := startEngine(t, c, builtin.Passthrough(in, out), app, nil)

	waitFor(t, setupTimeout, "the HTTP server to listen", func() bool {
		failIfExited(t, r)
		return r.e.HTTPAddr() != ""
	})
	base := "http://" + r.e.HTTPAddr()
	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %q, want 200", code, body)
	}
	waitFor(t, groupTimeout, "/readyz to answer 200", func() bool {
		code, _ := httpGet(t, base+"/readyz")
		return code == http.StatusOK
	})
	if !r.e.Ready() {
		t.Errorf("/readyz is 200 but Ready() is false")
	}

	recs := make([]*kgo.Record, 0, nRecs)
	for i := range nRecs {
		recs = append(recs, &kgo.Record{Topic: in, Key: fmt.Appendf(nil, "k%d", i%61), Value: fmt.Appendf(nil, "v%d", i)})
	}
	c.produce(recs)
	c.readOutput(app, r.e.Plan().SourceTopics(), out, nRecs)

	// The input is committed, so every record was counted; the counter must
	// say exactly nRecs (not more: nothing was processed twice).
	series := fmt.Sprintf(`weir_records_in_total{topic=%q}`, in)
	outSeries := fmt.Sprintf(`weir_records_out_total{topic=%q}`, out)
	var body string
	waitFor(t, setupTimeout, series+" and "+outSeries+" to reach "+strconv.Itoa(nRecs), func() bool {
		var code int
		code, body = httpGet(t, base+"/metrics")
		vin, okIn := metricValue(body, series)
		vout, okOut := metricValue(body, outSeries)
		return code == http.StatusOK && okIn && okOut && vin >= nRecs && vout >= nRecs
	})
	if v, _ := metricValue(body, series); v != nRecs {
		t.Errorf("%s = %v, want exactly %d", series, v, nRecs)
	}
	if v, _ := metricValue(body, outSeries); v != nRecs {
		t.Errorf("%s = %v, want exactly %d", outSeries, v, nRecs)
	}

	code, body := httpGet(t, base+"/api/tasks")
	if code != http.StatusOK {
		t.Fatalf("/api/tasks: %d %q", code, body)
	}
	var tasks []engine.TaskInfo
	if err := json.Unmarshal([]byte(body), &tasks); err != nil {
		t.Fatalf("/api/tasks: %v\n%s", err, body)
	}
	if got, want := taskIDs(tasks), allTasks(0, 8); !slices.Equal(got, want) {
		t.Errorf("/api/tasks ids %v, want %v", got, want)
	}
	for _, ti := range tasks {
		if ti.Subtopology != 0 || fmt.Sprintf("0_%d", ti.Partition) != ti.ID || !slices.Equal(ti.Topics, []string{in}) {
			t.Errorf("/api/tasks: %+v, want sub-topology 0, partition matching the id, topics [%s]", ti, in)
		}
	}
	if api, eng := taskIDs(tasks), taskIDs(r.e.Tasks()); !slices.Equal(api, eng) {
		t.Errorf("/api/tasks %v, Engine.Tasks() %v", api, eng)
	}
}
