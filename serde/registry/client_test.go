package registry_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"testing"

	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/serde/registry"
	"github.com/weirstream/weir/serde/registry/registrytest"
)

const schemaA = `{"type":"record","name":"A","fields":[{"name":"x","type":"long"}]}`
const schemaB = `{"type":"record","name":"B","fields":[{"name":"y","type":"string"}]}`

func TestClientRegisterAndFetch(t *testing.T) {
	ctx := context.Background()
	srv := registrytest.NewServer()
	defer srv.Close()
	c, err := registry.New(srv.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	idA, err := c.Register(ctx, "t-value", schemaA)
	if err != nil {
		t.Fatal(err)
	}
	idB, err := c.Register(ctx, "t-value", schemaB)
	if err != nil {
		t.Fatal(err)
	}
	if idA == idB {
		t.Fatalf("two schemas got id %d", idA)
	}
	// Cached: registering again makes no call.
	if again, err := c.Register(ctx, "t-value", schemaA); err != nil || again != idA {
		t.Fatalf("Register again = %d, %v", again, err)
	}
	if n := srv.Requests("POST /subjects/{subject}/versions"); n != 2 {
		t.Errorf("%d register calls, want 2", n)
	}
	// The same schema under another subject keeps its id.
	if other, err := c.Register(ctx, "u-value", schemaA); err != nil || other != idA {
		t.Errorf("Register under another subject = %d, %v; want %d", other, err, idA)
	}

	// A fresh client fetches by id once.
	c2, _ := registry.New(srv.URL())
	for range 3 {
		s, err := c2.SchemaByID(ctx, idB)
		if err != nil || s != schemaB {
			t.Fatalf("SchemaByID = %q, %v", s, err)
		}
	}
	if n := srv.Requests("GET /schemas/ids/{id}"); n != 1 {
		t.Errorf("%d fetches by id, want 1", n)
	}

	v1, err := c2.SubjectVersion(ctx, "t-value", 1)
	if err != nil || v1.ID != idA || v1.Version != 1 || v1.Subject != "t-value" || v1.Schema != schemaA {
		t.Errorf("version 1 = %+v, %v", v1, err)
	}
	latest, err := c2.SubjectVersion(ctx, "t-value", registry.Latest)
	if err != nil || latest.ID != idB || latest.Version != 2 {
		t.Errorf("latest = %+v, %v", latest, err)
	}
	c2.SubjectVersion(ctx, "t-value", 1) //nolint:errcheck // cached
	if n := srv.Requests("GET /subjects/{subject}/versions/{version}"); n != 2 {
		t.Errorf("%d version look-ups, want 2 (version 1 is cached)", n)
	}
}

func TestClientErrors(t *testing.T) {
	ctx := context.Background()
	srv := registrytest.NewServer()
	defer srv.Close()
	c, _ := registry.New(srv.URL())

	_, err := c.SchemaByID(ctx, 7)
	var re *registry.Error
	if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound || re.Code != 40403 {
		t.Fatalf("unknown id: %v, want a 404 *registry.Error with code 40403", err)
	}
	if !errors.Is(err, serde.ErrSchemaNotFound) {
		t.Errorf("unknown id: %v does not match serde.ErrSchemaNotFound", err)
	}
	if _, err := c.SubjectVersion(ctx, "nope", registry.Latest); !errors.Is(err, serde.ErrSchemaNotFound) {
		t.Errorf("unknown subject: %v", err)
	}
	_, err = c.Register(ctx, "s", `{"type":"nope"}`)
	if !errors.As(err, &re) || re.StatusCode != http.StatusUnprocessableEntity || re.Code != 42201 {
		t.Errorf("invalid schema: %v, want a 422 with code 42201", err)
	}
	if errors.Is(err, serde.ErrSchemaNotFound) {
		t.Errorf("invalid schema matches ErrSchemaNotFound")
	}

	for _, u := range []string{"", "localhost:8081", "ftp://x", "http://"} {
		if _, err := registry.New(u); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
	if _, err := registry.New(srv.URL(), registry.HTTPClient(http.DefaultClient), registry.TLS(&tls.Config{})); err == nil {
		t.Error("HTTPClient with TLS accepted")
	}
}

func TestClientBasicAuth(t *testing.T) {
	ctx := context.Background()
	srv := registrytest.NewServer(registrytest.WithBasicAuth("alice", "s3cret"))
	defer srv.Close()

	anon, _ := registry.New(srv.URL())
	_, err := anon.Register(ctx, "s", schemaA)
	var re *registry.Error
	if !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without credentials: %v, want 401", err)
	}
	wrong, _ := registry.New(srv.URL(), registry.BasicAuth("alice", "nope"))
	if _, err := wrong.Register(ctx, "s", schemaA); !errors.As(err, &re) || re.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %v, want 401", err)
	}
	c, _ := registry.New(srv.URL(), registry.BasicAuth("alice", "s3cret"))
	if _, err := c.Register(ctx, "s", schemaA); err != nil {
		t.Fatal(err)
	}
}

func TestClientTLS(t *testing.T) {
	ctx := context.Background()
	srv := registrytest.NewTLSServer()
	defer srv.Close()
	// Untrusted certificate: the request fails.
	plain, _ := registry.New(srv.URL())
	if _, err := plain.Register(ctx, "s", schemaA); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
	// Trusted through the TLS option (the test server's pool).
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c, err := registry.New(srv.URL(), registry.TLS(&tls.Config{RootCAs: pool}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, "s", schemaA); err != nil {
		t.Fatal(err)
	}
	// Or through an HTTP client.
	c2, _ := registry.New(srv.URL(), registry.HTTPClient(srv.Client()))
	if _, err := c2.SchemaByID(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

func TestSubjectEscaping(t *testing.T) {
	ctx := context.Background()
	srv := registrytest.NewServer()
	defer srv.Close()
	c, _ := registry.New(srv.URL())
	subject := "a/b c?d"
	id, err := c.Register(ctx, subject, schemaA)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := registry.New(srv.URL())
	s, err := c2.SubjectVersion(ctx, subject, 1)
	if err != nil || s.ID != id || s.Subject != subject {
		t.Fatalf("SubjectVersion(%q) = %+v, %v", subject, s, err)
	}
}
