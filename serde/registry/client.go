package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weirstream/weir/serde"
)

// ContentType is the media type of the registry's REST API.
const ContentType = "application/vnd.schemaregistry.v1+json"

// Latest selects a subject's newest version in SubjectVersion.
const Latest = -1

// Schema is one registered schema version.
type Schema struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	// Type is "AVRO" (the registry omits it for Avro), "PROTOBUF" or
	// "JSON".
	Type   string `json:"schemaType,omitempty"`
	Schema string `json:"schema"`
}

// Error is an error response of the registry: its HTTP status and the
// registry's own error code and message (40401 subject not found, 40402
// version not found, 40403 schema not found, 409 incompatible, 422
// invalid schema, ...). A not-found error matches serde.ErrSchemaNotFound
// with errors.Is.
type Error struct {
	Method, Path string
	StatusCode   int
	Code         int    `json:"error_code"`
	Message      string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("registry: %s %s: %d (error %d): %s", e.Method, e.Path, e.StatusCode, e.Code, e.Message)
}

// Is makes a 404 match serde.ErrSchemaNotFound.
func (e *Error) Is(target error) bool {
	return target == serde.ErrSchemaNotFound && e.StatusCode == http.StatusNotFound
}

// Opt configures a Client.
type Opt interface{ apply(*cfg) }

type cfg struct {
	hc        *http.Client
	tls       *tls.Config
	user, pwd string
	basic     bool
	timeout   time.Duration
}

func defaultCfg() cfg { return cfg{timeout: 10 * time.Second} }

type optFunc func(*cfg)

func (f optFunc) apply(c *cfg) { f(c) }

// BasicAuth sends HTTP basic credentials with every request (the
// registry's basic.auth.user.info). Default none.
func BasicAuth(user, password string) Opt {
	return optFunc(func(c *cfg) { c.user, c.pwd, c.basic = user, password, true })
}

// HTTPClient sets the HTTP client (transport, proxies, mTLS). Default: a
// client of its own with Timeout as its timeout. It may not be combined
// with TLS.
func HTTPClient(hc *http.Client) Opt { return optFunc(func(c *cfg) { c.hc = hc }) }

// TLS sets the TLS configuration of the Client's own HTTP client (root
// CAs, client certificates). Default: Go's defaults for https URLs.
func TLS(t *tls.Config) Opt { return optFunc(func(c *cfg) { c.tls = t }) }

// Timeout bounds each HTTP request of the Client's own HTTP client.
// Default 10s. Contexts passed to the methods bound them too.
func Timeout(d time.Duration) Opt { return optFunc(func(c *cfg) { c.timeout = d }) }

// Client is a Confluent Schema Registry client with caches: the schema of
// an id and the id of a (subject, schema) pair never change once
// registered, so each is fetched once per Client. It is safe for
// concurrent use, and implements serde.SchemaRegistry.
type Client struct {
	base  *url.URL
	hc    *http.Client
	cfg   cfg
	mu    sync.Mutex
	byID  map[int]string            // guarded by mu
	ids   map[subjectSchema]int     // guarded by mu
	infos map[subjectVersion]Schema // guarded by mu; only numbered versions
}

type subjectSchema struct{ subject, schema string }
type subjectVersion struct {
	subject string
	version int
}

var _ serde.SchemaRegistry = (*Client)(nil)

// New returns a Client of the registry at baseURL (http or https, e.g.
// "http://localhost:8081"). It does not contact the registry.
func New(baseURL string, opts ...Opt) (*Client, error) {
	c := defaultCfg()
	for _, o := range opts {
		o.apply(&c)
	}
	var errs []error
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("registry: URL %q: want http(s)://host:port", baseURL))
	}
	if c.hc != nil && c.tls != nil {
		errs = append(errs, errors.New("registry: HTTPClient and TLS are exclusive: set TLSClientConfig on your client's transport"))
	}
	if c.timeout <= 0 {
		errs = append(errs, fmt.Errorf("registry: timeout %v: want > 0", c.timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	hc := c.hc
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if c.tls != nil {
			tr.TLSClientConfig = c.tls.Clone()
		}
		hc = &http.Client{Transport: tr, Timeout: c.timeout}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{
		base: u, hc: hc, cfg: c,
		byID:  make(map[int]string),
		ids:   make(map[subjectSchema]int),
		infos: make(map[subjectVersion]Schema),
	}, nil
}

// Register registers an Avro schema under subject (POST
// /subjects/{subject}/versions) and returns its id; registering a schema
// the subject has already returns the existing id. The id is cached per
// (subject, schema).
func (c *Client) Register(ctx context.Context, subject, schema string) (int, error) {
	key := subjectSchema{subject, schema}
	c.mu.Lock()
	id, ok := c.ids[key]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	body, err := json.Marshal(map[string]string{"schema": schema})
	if err != nil {
		return 0, fmt.Errorf("registry: %w", err)
	}
	var resp struct {
		ID int `json:"id"`
	}
	if err := c.do(ctx, http.MethodPost, "/subjects/"+url.PathEscape(subject)+"/versions", body, &resp); err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.ids[key] = resp.ID
	c.byID[resp.ID] = schema
	c.mu.Unlock()
	return resp.ID, nil
}

// SchemaByID returns the schema with the given id (GET
// /schemas/ids/{id}), from the cache after the first call. An unknown id
// is an *Error matching serde.ErrSchemaNotFound.
func (c *Client) SchemaByID(ctx context.Context, id int) (string, error) {
	c.mu.Lock()
	s, ok := c.byID[id]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	var resp Schema
	if err := c.do(ctx, http.MethodGet, "/schemas/ids/"+strconv.Itoa(id), nil, &resp); err != nil {
		return "", err
	}
	c.mu.Lock()
	c.byID[id] = resp.Schema
	c.mu.Unlock()
	return resp.Schema, nil
}

// SubjectVersion returns one version of a subject (GET
// /subjects/{subject}/versions/{version}); version Latest asks for the
// newest, which is never cached. Numbered versions are cached.
func (c *Client) SubjectVersion(ctx context.Context, subject string, version int) (Schema, error) {
	key := subjectVersion{subject, version}
	v := "latest"
	if version != Latest {
		if version < 1 {
			return Schema{}, fmt.Errorf("registry: version %d: want >= 1 or Latest", version)
		}
		v = strconv.Itoa(version)
		c.mu.Lock()
		s, ok := c.infos[key]
		c.mu.Unlock()
		if ok {
			return s, nil
		}
	}
	var resp Schema
	if err := c.do(ctx, http.MethodGet, "/subjects/"+url.PathEscape(subject)+"/versions/"+v, nil, &resp); err != nil {
		return Schema{}, err
	}
	c.mu.Lock()
	c.infos[subjectVersion{resp.Subject, resp.Version}] = resp
	c.byID[resp.ID] = resp.Schema
	c.mu.Unlock()
	return resp, nil
}

// do sends one request and decodes a 2xx JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, rd)
	if err != nil {
		return fmt.Errorf("registry: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", ContentType+", application/json")
	if body != nil {
		req.Header.Set("Content-Type", ContentType)
	}
	if c.cfg.basic {
		req.SetBasicAuth(c.cfg.user, c.cfg.pwd)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("registry: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("registry: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{Method: method, Path: path, StatusCode: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
			if len(e.Message) > 200 {
				e.Message = e.Message[:200] + "..."
			}
		}
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("registry: %s %s: bad answer: %w", method, path, err)
	}
	return nil
}
