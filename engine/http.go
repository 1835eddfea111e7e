package engine

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TaskInfo describes one task this process owns, for the JSON API.
type TaskInfo struct {
	ID          string   `json:"id"`
	Subtopology int      `json:"subtopology"`
	Partition   int32    `json:"partition"`
	Topics      []string `json:"topics"`
}

// publish copies the task list for the HTTP server. Called by the owner of
// e.tasks.
func (e *Engine) publish() {
	snap := make([]TaskInfo, 0, len(e.tasks))
	for _, t := range e.tasks {
		var topics []string
		for _, topic := range t.rt.Topics() {
			if e.byTP[tp{topic, t.id.Partition}] == t {
				topics = append(topics, topic)
			}
		}
		sort.Strings(topics)
		snap = append(snap, TaskInfo{ID: t.id.String(), Subtopology: t.id.Subtopology, Partition: t.id.Partition, Topics: topics})
	}
	sort.Slice(snap, func(i, j int) bool {
		if snap[i].Subtopology != snap[j].Subtopology {
			return snap[i].Subtopology < snap[j].Subtopology
		}
		return snap[i].Partition < snap[j].Partition
	})
	e.m.tasks.Set(float64(len(snap)))
	e.snapMu.Lock()
	e.snap = snap
	e.snapMu.Unlock()
}

// Tasks returns the tasks this process owns now.
func (e *Engine) Tasks() []TaskInfo {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	return append([]TaskInfo(nil), e.snap...)
}

// handler serves:
//
//	GET /healthz        200 while the process runs
//	GET /readyz         200 once the group is joined and tasks run, else 503
//	GET /metrics        Prometheus metrics
//	GET /api/topology   the topology plan (JSON)
//	GET /api/tasks      the tasks this process owns (JSON)
//	GET /state/{store}/{key}  a key's committed value (JSON), or a redirect to its owner
//	GET /state/{store}?prefix=&from=&limit=  a page of the store's keys and values in this process's tasks
func (e *Engine) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n")) //nolint:errcheck
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !e.Ready() {
			http.Error(w, "not ready: joining the group", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n")) //nolint:errcheck
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/topology", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, e.plan.Describe())
	})
	mux.HandleFunc("GET /api/tasks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, e.Tasks())
	})
	mux.HandleFunc("GET /state/{store}/{key}", e.serveState)
	mux.HandleFunc("GET /state/{store}", e.serveList)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // the client went away
}
