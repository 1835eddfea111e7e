package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
)

// clientIDPrefix starts the Kafka client id of every weir process; the rest
// is the process's HTTP address, so that a process can tell a client where
// a key's owner answers queries (the group description lists client ids).
const clientIDPrefix = "weir@"

// QueryResult is the body of a successful GET /state/{store}/{key}.
type QueryResult struct {
	Store string `json:"store"`
	Key   string `json:"key"`
	Task  string `json:"task"`
	// Value is the decoded value for queryable stores, else the raw
	// bytes in base64.
	Value any `json:"value"`
}

// serveState answers GET /state/{store}/{key} with the key's value as of
// the owning task's last checkpoint. A key is looked for in the task Kafka's
// default partitioner (murmur2) picks, then in every other local task of
// the store. When it is in none and another process owns the murmur2 task,
// it redirects there (307) if that process has an HTTP address.
func (e *Engine) serveState(w http.ResponseWriter, r *http.Request) {
	store, text := r.PathValue("store"), r.PathValue("key")
	sub, ok := e.plan.Stores()[store]
	if !ok || e.db == nil {
		httpError(w, http.StatusNotFound, "no store %q in this topology", store)
		return
	}
	codec, queryable := e.plan.StoreCodec(store)
	key := []byte(text)
	if queryable {
		var err error
		if key, err = codec.Key(text); err != nil {
			httpError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	// The key's task under Kafka's default partitioner first, then every
	// other task of the store's sub-topology this process owns: producers
	// with another partitioner (librdkafka's default is CRC32) put keys
	// elsewhere.
	n := int(e.lay.tasks[sub.ID])
	p := int32(kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&kgo.Record{Key: key}, n))
	primary := topology.TaskID{Subtopology: sub.ID, Partition: p}
	candidates := []topology.TaskID{primary}
	for _, t := range e.Tasks() {
		if t.Subtopology == sub.ID && t.Partition != p {
			candidates = append(candidates, topology.TaskID{Subtopology: sub.ID, Partition: t.Partition})
		}
	}
	var (
		v     []byte
		id    topology.TaskID
		found bool
	)
	for _, c := range candidates {
		if !e.owns(c) {
			continue
		}
		got, err := e.db.Committed(c.String(), store, key)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			httpError(w, http.StatusInternalServerError, "%v", err)
			return
		}
		v, id, found = got, c, true
		break
	}
	if !found {
		if e.owns(primary) {
			httpError(w, http.StatusNotFound, "key %q has no value in store %q (task %s)", text, store, primary)
			return
		}
		owner, err := e.owner(r.Context(), sub.Sources[0].Topic, p)
		switch {
		case err != nil:
			httpError(w, http.StatusServiceUnavailable, "task %s is not owned here and its owner is unknown: %v", primary, err)
		case owner != "":
			http.Redirect(w, r, "http://"+owner+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		default:
			httpError(w, http.StatusNotFound, "task %s is not owned by this process, nor by one with an HTTP address", primary)
		}
		return
	}
	res := QueryResult{Store: store, Key: text, Task: id.String(), Value: base64.StdEncoding.EncodeToString(v)}
	if queryable {
		var err error
		if res.Value, err = codec.Value(v); err != nil {
			httpError(w, http.StatusInternalServerError, "stored value: %v", err)
			return
		}
	}
	writeJSON(w, res)
}

func (e *Engine) owns(id topology.TaskID) bool {
	for _, t := range e.Tasks() {
		if t.Subtopology == id.Subtopology && t.Partition == id.Partition {
			return true
		}
	}
	return false
}

// owner returns the HTTP address of the group member assigned topic's
// partition p, "" when it has none.
func (e *Engine) owner(ctx context.Context, topic string, p int32) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	groups, err := e.adm.DescribeGroups(ctx, e.cfg.AppID)
	if err != nil {
		return "", err
	}
	g, ok := groups[e.cfg.AppID]
	if !ok || g.Err != nil {
		return "", fmt.Errorf("describe group %q: %v", e.cfg.AppID, g.Err)
	}
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range a.Topics {
			if t.Topic != topic {
				continue
			}
			for _, mp := range t.Partitions {
				if mp == p {
					return strings.TrimPrefix(m.ClientID, clientIDPrefix), nil
				}
			}
		}
	}
	return "", fmt.Errorf("no member owns %s[%d] (rebalancing?)", topic, p)
}

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	writeJSON(w, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// reachable turns a listen address into one other processes can dial: an
// unspecified host (0.0.0.0, [::]) becomes this machine's hostname (in a
// container, its id, which the container network's DNS resolves).
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return net.JoinHostPort(h, port)
		}
	}
	return addr
}
