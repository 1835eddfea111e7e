package engine

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/state"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/windows"
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
	// Kind is the store's kind (topology.StoreKind): raw, value, list,
	// map or window.
	Kind string `json:"kind"`
	// Value is the decoded value: a value for raw and value stores, an
	// array for a list, [{"key","value"}] for a map, and
	// [{"start","end","value"}] for a window store (the key's windows
	// with state, open ones included).
	Value any `json:"value"`
}

// ListResult is the body of a successful GET /state/{store}.
type ListResult struct {
	Store   string       `json:"store"`
	Kind    string       `json:"kind"`
	Entries []ListedItem `json:"entries"`
	// Next, when set, is the from of the next page; absent on the last.
	Next string `json:"next,omitempty"`
}

// ListedItem is one key of a listing, with its value as in QueryResult.
type ListedItem struct {
	Key   any    `json:"key"`
	Task  string `json:"task"`
	Value any    `json:"value"`
}

// queryTime is the time queries of task judge expiry at.
func (e *Engine) queryTime(task string) topology.QueryTime {
	e.snapMu.Lock()
	wm, ok := e.committedWM[task]
	e.snapMu.Unlock()
	if !ok {
		wm = windows.Unknown
	}
	return topology.QueryTime{EventTime: wm, ProcessingTime: time.Now().UnixMilli()}
}

// queryable returns a store's sub-topology and query codec, or answers
// 404 itself.
func (e *Engine) queryable(w http.ResponseWriter, store string) (*topology.Subtopology, topology.StoreCodec, bool) {
	sub, ok := e.plan.Stores()[store]
	if !ok || e.db == nil {
		httpError(w, http.StatusNotFound, "no store %q in this topology", store)
		return nil, topology.StoreCodec{}, false
	}
	codec, ok := e.plan.StoreCodec(store)
	if !ok {
		httpError(w, http.StatusNotFound, "store %q is not queryable: declare it with topology.QueryableValue, QueryableList, QueryableMap or Queryable", store)
		return nil, topology.StoreCodec{}, false
	}
	return sub, codec, true
}

// serveState answers GET /state/{store}/{key} with the key's value as of
// the owning task's last checkpoint, decoded as the store's declaration
// says (topology.StoreCodec); expired values are absent. A key is looked
// for in the task Kafka's default partitioner (murmur2) picks, then in
// every other local task of the store. When it is in none and another
// process owns the murmur2 task, it redirects there (307) if that process
// has an HTTP address.
func (e *Engine) serveState(w http.ResponseWriter, r *http.Request) {
	store, text := r.PathValue("store"), r.PathValue("key")
	sub, codec, ok := e.queryable(w, store)
	if !ok {
		return
	}
	key, err := codec.Key(text)
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
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
	for _, c := range candidates {
		if !e.owns(c) {
			continue
		}
		var (
			v     any
			found bool
		)
		err := e.db.CommittedView(c.String(), store, func(st state.Store) error {
			var err error
			v, found, err = codec.Get(st, key, e.queryTime(c.String()))
			return err
		})
		if err != nil {
			httpError(w, http.StatusInternalServerError, "store %q, key %q, task %s: %v", store, text, c, err)
			return
		}
		if found {
			writeJSON(w, QueryResult{Store: store, Key: text, Task: c.String(), Kind: string(codec.Kind), Value: v})
			return
		}
	}
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
}

// Listing limits of GET /state/{store}.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// serveList answers GET /state/{store}?prefix=&from=&limit= with a page
// of the store's live keys and values in the tasks this process owns now
// (no fan-out: a full listing asks every process, /api/tasks says which
// tasks each owns). Tasks are listed in partition order, each in its
// store's key order. prefix filters on the start of the encoded key (the
// text of a string key); limit is at most 1000 (default 100); from is the
// opaque next of the previous page.
func (e *Engine) serveList(w http.ResponseWriter, r *http.Request) {
	store := r.PathValue("store")
	sub, codec, ok := e.queryable(w, store)
	if !ok {
		return
	}
	q := r.URL.Query()
	prefix := []byte(q.Get("prefix"))
	limit := defaultListLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxListLimit {
			httpError(w, http.StatusBadRequest, "limit %q: want 1 to %d", l, maxListLimit)
			return
		}
		limit = n
	}
	fromPart, fromKey := int32(-1), []byte(nil)
	if f := q.Get("from"); f != "" {
		var err error
		if fromPart, fromKey, err = parseCursor(f); err != nil {
			httpError(w, http.StatusBadRequest, "from %q: %v", f, err)
			return
		}
	}
	var parts []int32
	for _, t := range e.Tasks() {
		if t.Subtopology == sub.ID && t.Partition >= fromPart {
			parts = append(parts, t.Partition)
		}
	}
	res := ListResult{Store: store, Kind: string(codec.Kind), Entries: []ListedItem{}}
	for _, p := range parts {
		id := topology.TaskID{Subtopology: sub.ID, Partition: p}.String()
		from := fromKey
		if p != fromPart {
			from = nil
		}
		err := e.db.CommittedView(id, store, func(st state.Store) error {
			now := e.queryTime(id)
			for {
				keys, err := codec.Keys(st, prefix, from, limit+1)
				if err != nil {
					return err
				}
				var next []byte // the first key of the next batch
				if len(keys) > limit {
					keys, next = keys[:limit], keys[limit]
				}
				for _, k := range keys {
					v, ok, err := codec.Get(st, k, now)
					if err != nil {
						return fmt.Errorf("key %q: %w", k, err)
					}
					if !ok {
						continue
					}
					if len(res.Entries) == limit { // one more live entry: there is a next page
						res.Next = formatCursor(p, k)
						return errPageFull
					}
					kj, err := codec.KeyJSON(k)
					if err != nil {
						return err
					}
					res.Entries = append(res.Entries, ListedItem{Key: kj, Task: id, Value: v})
				}
				if next == nil {
					return nil
				}
				from = next
			}
		})
		if errors.Is(err, errPageFull) {
			break
		}
		if err != nil {
			httpError(w, http.StatusInternalServerError, "list store %q, task %s: %v", store, id, err)
			return
		}
	}
	writeJSON(w, res)
}

var errPageFull = errors.New("engine: page full")

// formatCursor and parseCursor write and read a listing's next/from:
// "<partition>.<base64url key>", the first key of the next page.
func formatCursor(p int32, key []byte) string {
	return strconv.Itoa(int(p)) + "." + base64.RawURLEncoding.EncodeToString(key)
}

func parseCursor(s string) (int32, []byte, error) {
	ps, ks, ok := strings.Cut(s, ".")
	if !ok {
		return 0, nil, errors.New("not a listing's next")
	}
	p, err := strconv.ParseInt(ps, 10, 32)
	if err != nil || p < 0 {
		return 0, nil, errors.New("not a listing's next")
	}
	k, err := base64.RawURLEncoding.DecodeString(ks)
	if err != nil {
		return 0, nil, fmt.Errorf("not a listing's next: %w", err)
	}
	return int32(p), k, nil
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
