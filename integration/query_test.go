package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
)

// queryClock is the TTL clock of queryTopology's "ttl-store" and
// "ettl-store": records whose value starts with "old" are written as if at
// 1000 ms (processing and event time), so that their values expired long
// ago by the wall clock and when the watermark passes 2000; the others at
// the wall clock, and far in the future in event time. The watermark is
// the task's.
type queryClock struct {
	ctx *topology.Context
	old bool
}

func (c *queryClock) Timestamp() int64 {
	if c.old {
		return 1000
	}
	return 1 << 60
}

func (c *queryClock) Watermark() int64 { return c.ctx.Watermark() }

func (c *queryClock) ProcessingTime() time.Time {
	if c.old {
		return time.UnixMilli(1000)
	}
	return time.Now()
}

// queryTopology writes every record of in to a store per handle kind
// (last value, value counts, the list of values, the last value with a
// one-hour processing-time TTL) and counts it in tumbling and in sliced
// hopping windows.
func queryTopology(in string) *topology.Topology {
	t := topology.New()
	str, i64 := serde.String(), serde.Int64()
	src := topology.Source(t, in, str, str, topology.Named("query-source"))
	topology.Process(src, func(ctx *topology.Context) (topology.ProcessFunc[string, string, string, string], error) {
		var errs []error
		open := func(name string) state.Store {
			st, err := ctx.Store(name)
			errs = append(errs, err)
			return st
		}
		clock := &queryClock{ctx: ctx}
		last := state.NewValue(open("val-store"), str)
		counts := state.NewMap(open("map-store"), str, i64)
		all := state.NewList(open("list-store"), str)
		ttl := state.NewValue(open("ttl-store"), str, state.WithTTL(state.ProcessingTimeTTL(time.Hour), clock))
		ettl := state.NewValue(open("ettl-store"), str, state.WithTTL(state.EventTimeTTL(time.Second), clock))
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		return func(ctx *topology.Context, r topology.Record[string, string], _ func(topology.Record[string, string]) error) error {
			k := []byte(r.Key)
			n, _, err := counts.Get(k, r.Value)
			if err != nil {
				return err
			}
			clock.old = strings.HasPrefix(r.Value, "old")
			return errors.Join(last.Set(k, r.Value), counts.Put(k, r.Value, n+1), all.Append(k, r.Value), ttl.Set(k, r.Value), ettl.Set(k, r.Value))
		}, nil
	}, topology.Named("query-process"),
		topology.Stores("val-store", "map-store", "list-store", "ttl-store", "ettl-store"),
		topology.QueryableValue("val-store", str, str),
		topology.QueryableMap("map-store", str, str, i64),
		topology.QueryableList("list-store", str, str),
		topology.QueryableValue("ttl-store", str, str, topology.QueryTTL(state.ProcessingTime)),
		topology.QueryableValue("ettl-store", str, str, topology.QueryTTL(state.EventTime)))
	tumbling, err := windows.Tumbling(10 * time.Second)
	if err != nil {
		panic(err)
	}
	hopping, err := windows.Hopping(10*time.Second, 5*time.Second)
	if err != nil {
		panic(err)
	}
	topology.Aggregate(src, windows.Spec{Assigner: tumbling}, windows.Count[string](), i64, topology.Named("tumble"))
	topology.Aggregate(src, windows.Spec{Assigner: hopping}, windows.Count[string](), i64, topology.Named("hop"))
	return t
}

// getJSON GETs url with client and decodes a 200 answer into v; it
// returns the status and the body.
func getJSON(t *testing.T, client *http.Client, u string, v any) (int, string, http.Header) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", u, err, body)
		}
	}
	return resp.StatusCode, string(body), resp.Header
}

// TestStateQueries checks every route of interactive queries on two
// engines splitting the tasks: a key's value in a store written by each
// kind of handle (decoded, no envelope), a key's windows in tumbling and
// sliced hopping window stores, paged prefix listings (each engine lists
// its own tasks; together they list every key once), an expired value
// hidden from both, an unknown store, and the redirect to the key's owner.
func TestStateQueries(t *testing.T) {
	t.Parallel()
	const (
		in  = "query-in"
		app = "query-app"
	)
	c := newCluster(t)
	c.createTopic(in, 4)
	x := startEngine(t, c, queryTopology(in), app, nil)
	y := startEngine(t, c, queryTopology(in), app, nil)
	waitSplit(t, x, y, allTasks(0, 4))

	rec := func(k, v string, ts int64) *kgo.Record {
		return &kgo.Record{Topic: in, Key: []byte(k), Value: []byte(v), Timestamp: time.UnixMilli(ts)}
	}
	recs := []*kgo.Record{rec("k1", "v1", 1000), rec("k1", "v2", 2000), rec("k1", "v1", 6000), rec("gone", "old", 3000)}
	// A later record in gone's partition moves its watermark to 6000,
	// past the expiry of gone's event-time value.
	later := ""
	for i := 0; later == ""; i++ {
		if k := fmt.Sprintf("later-%d", i); murmur2(in, []byte(k), 4) == murmur2(in, []byte("gone"), 4) {
			later = k
		}
	}
	recs = append(recs, rec(later, "new", 6000))
	var pkeys []string
	for i := range 12 {
		k := fmt.Sprintf("p-%02d", i)
		pkeys = append(pkeys, k)
		recs = append(recs, rec(k, "x", 3000))
	}
	c.produce(recs)

	owners := map[string]*runner{}
	for _, r := range []*runner{x, y} {
		for _, ti := range r.e.Tasks() {
			owners[ti.ID] = r
		}
	}
	ownerOf := func(key string) (*runner, *runner) {
		o := owners[fmt.Sprintf("0_%d", murmur2(in, []byte(key), 4))]
		if o == x {
			return x, y
		}
		return y, x
	}
	base := func(r *runner) string { return "http://" + r.e.HTTPAddr() }

	// Every record is committed once each key's last value shows.
	for _, k := range append([]string{"k1", "gone", later}, pkeys...) {
		own, _ := ownerOf(k)
		want := map[string]string{"k1": "v1", "gone": "old", later: "new"}[k]
		if want == "" {
			want = "x"
		}
		waitFor(t, outputTimeout, "the value of "+k+" to show", func() bool {
			failIfExited(t, x, y)
			var res engine.QueryResult
			code, _, _ := getJSON(t, httpClient, base(own)+"/state/val-store/"+k, &res)
			return code == http.StatusOK && res.Value == want
		})
	}

	k1, other := ownerOf("k1")
	task := fmt.Sprintf("0_%d", murmur2(in, []byte("k1"), 4))
	check := func(store, key string, wantKind string, want string) {
		t.Helper()
		var res struct {
			engine.QueryResult
			Value json.RawMessage `json:"value"`
		}
		code, body, _ := getJSON(t, httpClient, base(k1)+"/state/"+store+"/"+key, &res)
		if code != http.StatusOK {
			t.Errorf("GET /state/%s/%s: %d %s, want 200", store, key, code, body)
			return
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, res.Value); err != nil {
			t.Fatal(err)
		}
		if res.Store != store || res.Key != key || res.Task != task || res.Kind != wantKind || compact.String() != want {
			t.Errorf("GET /state/%s/%s: store %q key %q task %q kind %q value %s, want %q %q %q %q %s",
				store, key, res.Store, res.Key, res.Task, res.Kind, compact.String(), store, key, task, wantKind, want)
		}
	}
	check("val-store", "k1", "value", `"v1"`)
	check("map-store", "k1", "map", `[{"key":"v1","value":2},{"key":"v2","value":1}]`)
	check("list-store", "k1", "list", `["v1","v2","v1"]`)
	check("ttl-store", "k1", "value", `"v1"`)
	check("tumble-store", "k1", "window", `[{"start":0,"end":10000,"value":3}]`)
	// Panes [0,5000) (2 records) and [5000,10000) (1); [-5000,5000)
	// closed at watermark 6000 and was emitted.
	check("hop-store", "k1", "window", `[{"start":0,"end":10000,"value":3},{"start":5000,"end":15000,"value":1}]`)

	gone, _ := ownerOf("gone")
	if code, body, _ := getJSON(t, httpClient, base(gone)+"/state/ttl-store/gone", nil); code != http.StatusNotFound {
		t.Errorf("GET /state/ttl-store/gone (expired): %d %s, want 404", code, body)
	}
	if code, body, _ := getJSON(t, httpClient, base(gone)+"/state/ettl-store/gone", nil); code != http.StatusNotFound {
		t.Errorf("GET /state/ettl-store/gone (expired at watermark 6000): %d %s, want 404", code, body)
	}
	var res engine.QueryResult
	if code, body, _ := getJSON(t, httpClient, base(gone)+"/state/ettl-store/"+later, &res); code != http.StatusOK || res.Value != "new" {
		t.Errorf("GET /state/ettl-store/%s: %d %s, want 200 and %q", later, code, body, "new")
	}
	if code, body, _ := getJSON(t, httpClient, base(x)+"/state/no-such-store/k1", nil); code != http.StatusNotFound {
		t.Errorf("GET /state/no-such-store/k1: %d %s, want 404", code, body)
	}
	if code, body, _ := getJSON(t, httpClient, base(x)+"/state/no-such-store", nil); code != http.StatusNotFound {
		t.Errorf("GET /state/no-such-store: %d %s, want 404", code, body)
	}

	// The other engine redirects to k1's owner; following it gives the
	// value.
	noFollow := &http.Client{Timeout: httpClient.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	code, body, h := getJSON(t, noFollow, base(other)+"/state/list-store/k1", nil)
	if want := base(k1) + "/state/list-store/k1"; code != http.StatusTemporaryRedirect || h.Get("Location") != want {
		t.Errorf("GET %s/state/list-store/k1 (not the owner): %d Location %q %s, want 307 to %q", base(other), code, h.Get("Location"), body, want)
	}
	var followed struct {
		engine.QueryResult
		Value []string `json:"value"`
	}
	if code, body, _ := getJSON(t, httpClient, base(other)+"/state/list-store/k1", &followed); code != http.StatusOK || !slices.Equal(followed.Value, []string{"v1", "v2", "v1"}) || followed.Task != task {
		t.Errorf("GET %s/state/list-store/k1 following the redirect: %d %s, want the list [v1 v2 v1] of task %s", base(other), code, body, task)
	}

	// Listings: each engine lists its own tasks, in pages of at most
	// limit; together they list every matching live key exactly once.
	list := func(store, prefix string, limit int) map[string]string {
		t.Helper()
		got := map[string]string{}
		for _, r := range []*runner{x, y} {
			mine := map[string]bool{}
			for _, ti := range r.e.Tasks() {
				mine[ti.ID] = true
			}
			from := ""
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatalf("listing %s: more than 20 pages", store)
				}
				u := fmt.Sprintf("%s/state/%s?prefix=%s&limit=%d&from=%s", base(r), store, url.QueryEscape(prefix), limit, url.QueryEscape(from))
				var page struct {
					engine.ListResult
					Entries []struct {
						Key   string          `json:"key"`
						Task  string          `json:"task"`
						Value json.RawMessage `json:"value"`
					} `json:"entries"`
				}
				if code, body, _ := getJSON(t, httpClient, u, &page); code != http.StatusOK {
					t.Fatalf("GET %s: %d %s", u, code, body)
				}
				if len(page.Entries) > limit || (page.Next != "" && len(page.Entries) != limit) {
					t.Errorf("GET %s: %d entries, next %q: want a full page of %d before a next", u, len(page.Entries), page.Next, limit)
				}
				for _, e := range page.Entries {
					if !mine[e.Task] {
						t.Errorf("GET %s: key %q of task %s, which this engine does not own", u, e.Key, e.Task)
					}
					if _, dup := got[e.Key]; dup {
						t.Errorf("listing %s: key %q twice", store, e.Key)
					}
					got[e.Key] = string(e.Value)
				}
				if page.Next == "" {
					break
				}
				from = page.Next
			}
		}
		return got
	}
	wantP := map[string]string{}
	for _, k := range pkeys {
		wantP[k] = `"x"`
	}
	if got := list("val-store", "p-", 5); !mapsEqual(got, wantP) {
		t.Errorf("listing val-store with prefix p-: %v, want %v", got, wantP)
	}
	wantTTL := mapWith(mapWith(wantP, "k1", `"v1"`), later, `"new"`)
	if got := list("ttl-store", "", 3); !mapsEqual(got, wantTTL) {
		t.Errorf("listing ttl-store (gone expired): %v, want %v", got, wantTTL)
	}
	if got, want := list("map-store", "k", 2), map[string]string{"k1": `[{"key":"v1","value":2},{"key":"v2","value":1}]`}; !mapsEqual(compactAll(t, got), want) {
		t.Errorf("listing map-store with prefix k: %v, want %v", got, want)
	}
	wantW := map[string]string{}
	for _, k := range pkeys {
		wantW[k] = `[{"start":0,"end":10000,"value":1}]`
	}
	if got := list("tumble-store", "p-", 4); !mapsEqual(compactAll(t, got), wantW) {
		t.Errorf("listing tumble-store with prefix p-: %v, want %v", got, wantW)
	}
}

// compactAll compacts every JSON value of m.
func compactAll(t *testing.T, m map[string]string) map[string]string {
	t.Helper()
	out := make(map[string]string, len(m))
	for k, v := range m {
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(v)); err != nil {
			t.Fatalf("value of %q: %v", k, err)
		}
		out[k] = b.String()
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func mapWith(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for k, v := range m {
		out[k] = v
	}
	return out
}
