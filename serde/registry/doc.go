// Package registry is a small client of the Confluent Schema Registry REST
// API, enough for weir's Avro serdes (package serde): register a schema
// under a subject, fetch a schema by id, look up a subject's version.
//
// # Use
//
//	c, err := registry.New("https://registry:8081",
//		registry.BasicAuth(user, password),
//		registry.TLS(&tls.Config{RootCAs: pool}))
//	values, err := serde.AvroRegistryTyped(c, serde.ValueSubject("page-views"), schema, mapping)
//
// # Caching
//
// Schema ids are immutable in a registry, so the Client keeps every schema
// it fetched by id, every id it got for a (subject, schema) pair and every
// numbered subject version: each is one HTTP call per Client. "latest" is
// never cached. The serdes add their own cache of compiled codecs.
//
// # Errors
//
// A registry error response is an *Error with the HTTP status and the
// registry's error code; 404s match serde.ErrSchemaNotFound with
// errors.Is, which the serdes turn into a *serde.DecodeError (a bad
// record). Transport failures are plain wrapped errors.
//
// # Concurrency
//
// A Client is safe for concurrent use; no lock is held across a request.
// Package registrytest is an in-memory registry for tests.
package registry
