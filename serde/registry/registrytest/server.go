// Package registrytest is an in-memory Confluent Schema Registry for tests
// and local development: the endpoints weir's registry client uses
// (register a schema under a subject, fetch a schema by id, fetch a
// subject's version), optional basic auth, and request counters so a test
// can check what a client cached.
//
//	reg := registrytest.NewServer()
//	defer reg.Close()
//	c, _ := registry.New(reg.URL())
//
// A Registry is safe for concurrent use.
package registrytest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/linkedin/goavro/v2"
)

// Registry is the registry's state and HTTP handler. Serve it with
// NewServer (httptest, loopback) or on any listener with ServeHTTP.
type Registry struct {
	user, pwd string
	auth      bool

	mu       sync.Mutex
	schemas  []string         // id-1 -> schema text
	byText   map[string]int   // canonical text -> id
	subjects map[string][]int // subject -> ids by version-1
	requests map[string]int   // "METHOD /pattern" -> count
	total    int
}

// Server is a Registry served by an httptest.Server on loopback.
type Server struct {
	*Registry
	srv *httptest.Server
}

// Opt configures a Registry.
type Opt func(*Registry)

// WithBasicAuth makes the registry require these basic credentials
// (401 otherwise). Default: no authentication.
func WithBasicAuth(user, password string) Opt {
	return func(r *Registry) { r.user, r.pwd, r.auth = user, password, true }
}

// New returns an empty Registry.
func New(opts ...Opt) *Registry {
	r := &Registry{byText: make(map[string]int), subjects: make(map[string][]int), requests: make(map[string]int)}
	for _, o := range opts {
		o(r)
	}
	return r
}

// NewServer starts an empty Registry on a loopback port.
func NewServer(opts ...Opt) *Server {
	r := New(opts...)
	return &Server{Registry: r, srv: httptest.NewServer(r)}
}

// NewTLSServer starts an empty Registry on a loopback port with TLS; use
// Client() or its TLS config to trust it.
func NewTLSServer(opts ...Opt) *Server {
	r := New(opts...)
	return &Server{Registry: r, srv: httptest.NewTLSServer(r)}
}

// URL returns the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// Client returns an HTTP client that trusts the server (for TLS servers).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Register registers schema under subject directly (no HTTP) and returns
// its id, as POST /subjects/{subject}/versions would.
func (r *Registry) Register(subject, schema string) (int, error) {
	c, err := goavro.NewCodec(schema)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.registerLocked(subject, c.CanonicalSchema(), schema), nil
}

func (r *Registry) registerLocked(subject, canonical, schema string) int {
	id, ok := r.byText[canonical]
	if !ok {
		r.schemas = append(r.schemas, schema)
		id = len(r.schemas)
		r.byText[canonical] = id
	}
	for _, v := range r.subjects[subject] {
		if v == id {
			return id
		}
	}
	r.subjects[subject] = append(r.subjects[subject], id)
	return id
}

// Requests returns how many requests matched pattern, one of
// "POST /subjects/{subject}/versions", "GET /schemas/ids/{id}" and
// "GET /subjects/{subject}/versions/{version}"; "" counts every request,
// including rejected ones.
func (r *Registry) Requests(pattern string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pattern == "" {
		return r.total
	}
	return r.requests[pattern]
}

// ServeHTTP implements the registry's REST API subset.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.total++
	r.mu.Unlock()
	if r.auth {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.user || p != r.pwd {
			writeErr(w, http.StatusUnauthorized, 401, "Unauthorized")
			return
		}
	}
	parts := strings.Split(strings.Trim(req.URL.EscapedPath(), "/"), "/")
	for i, p := range parts {
		if u, err := url.PathUnescape(p); err == nil {
			parts[i] = u
		}
	}
	switch {
	case req.Method == http.MethodPost && len(parts) == 3 && parts[0] == "subjects" && parts[2] == "versions":
		r.count("POST /subjects/{subject}/versions")
		r.register(w, req, parts[1])
	case req.Method == http.MethodGet && len(parts) == 3 && parts[0] == "schemas" && parts[1] == "ids":
		r.count("GET /schemas/ids/{id}")
		r.byID(w, parts[2])
	case req.Method == http.MethodGet && len(parts) == 4 && parts[0] == "subjects" && parts[2] == "versions":
		r.count("GET /subjects/{subject}/versions/{version}")
		r.version(w, parts[1], parts[3])
	default:
		writeErr(w, http.StatusNotFound, 404, "not found: "+req.Method+" "+req.URL.Path)
	}
}

func (r *Registry) count(pattern string) {
	r.mu.Lock()
	r.requests[pattern]++
	r.mu.Unlock()
}

func (r *Registry) register(w http.ResponseWriter, req *http.Request, subject string) {
	var body struct {
		Schema     string `json:"schema"`
		SchemaType string `json:"schemaType"`
	}
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		writeErr(w, http.StatusUnprocessableEntity, 42203, "bad request body: "+err.Error())
		return
	}
	if body.SchemaType != "" && body.SchemaType != "AVRO" {
		writeErr(w, http.StatusUnprocessableEntity, 42201, "this test registry only knows AVRO schemas")
		return
	}
	c, err := goavro.NewCodec(body.Schema)
	if err != nil {
		writeErr(w, http.StatusUnprocessableEntity, 42201, "Invalid schema: "+err.Error())
		return
	}
	r.mu.Lock()
	id := r.registerLocked(subject, c.CanonicalSchema(), body.Schema)
	r.mu.Unlock()
	writeJSON(w, map[string]int{"id": id})
}

func (r *Registry) byID(w http.ResponseWriter, idText string) {
	id, err := strconv.Atoi(idText)
	r.mu.Lock()
	ok := err == nil && id >= 1 && id <= len(r.schemas)
	var s string
	if ok {
		s = r.schemas[id-1]
	}
	r.mu.Unlock()
	if !ok {
		writeErr(w, http.StatusNotFound, 40403, "Schema "+idText+" not found")
		return
	}
	writeJSON(w, map[string]string{"schema": s})
}

func (r *Registry) version(w http.ResponseWriter, subject, v string) {
	r.mu.Lock()
	ids, ok := r.subjects[subject]
	if !ok {
		r.mu.Unlock()
		writeErr(w, http.StatusNotFound, 40401, "Subject '"+subject+"' not found.")
		return
	}
	n := len(ids)
	if v != "latest" && v != "-1" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > len(ids) {
			r.mu.Unlock()
			writeErr(w, http.StatusNotFound, 40402, "Version "+v+" not found.")
			return
		}
	}
	id := ids[n-1]
	s := r.schemas[id-1]
	r.mu.Unlock()
	writeJSON(w, map[string]any{"subject": subject, "version": n, "id": id, "schema": s})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client sees a short body
}

func writeErr(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error_code": code, "message": msg}) //nolint:errcheck // as above
}
