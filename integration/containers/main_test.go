// Package containers runs weir the way users deploy it: processor
// containers beside a broker container, on a private Docker network, built
// and driven with testcontainers-go. Faults are Docker's own: stop (SIGTERM),
// kill (SIGKILL), pause past the session timeout, network disconnect, and
// restarts on kept or empty state volumes. A reader in the test process
// (franz-go, read_committed) checks the output against an oracle.
//
// # The environment
//
// No image is ever pulled (the project's machines have no registry):
//
//   - the images are built from the repository's Dockerfile ("FROM
//     scratch"), in a temporary build context holding the Dockerfile, the
//     .dockerignore and a static processor binary built by this test
//     (CGO_ENABLED=0 go build ./cmd/processor), once per test run;
//   - Ryuk, testcontainers' garbage collector, is an image too, so TestMain
//     sets TESTCONTAINERS_RYUK_DISABLED=true before anything else, and each
//     test removes its own containers, volumes and network in t.Cleanup
//     (which runs after a failure too). Everything created carries the
//     label weir.test=containers; if a run is killed before its cleanups,
//     'docker rm -f $(docker ps -aq --filter label=weir.test=containers)',
//     then the same for 'docker volume' and 'docker network', removes the
//     rest.
//
// Where no Docker engine answers, every test skips with the same message.
//
// # Reaching the broker from both sides
//
// The dev broker has one listener and advertises one address. It listens
// on 0.0.0.0:9092 in its container and advertises broker:9092, its alias on
// the test's network, which is what the processor containers dial. The test
// process cannot resolve "broker", so its Kafka clients dial through a
// kgo.Dialer that sends broker:9092 to the port Docker mapped on the host
// (see stack.dial). Both sides then agree on the broker's identity, which
// the Kafka protocol needs (metadata, coordinators and transactions name
// brokers by their advertised address). Running the reader in a container
// would need a reader binary in an image; advertising 127.0.0.1:PORT with
// the same port mapped on the host would need a fixed host port, which
// parallel runs would fight over.
//
// # Running
//
//	go test ./integration/containers/                     # a few minutes
//	WEIR_CONTAINER_CHAOS=1 go test -run Chaos -timeout 30m ./integration/containers/
//
// WEIR_CONTAINER_CHAOS_ROUNDS (default 20) sets the number of random faults
// of the chaos run.
package containers

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// docker is the engine the tests drive, probed once by TestMain.
var docker struct {
	cli     *testcontainers.DockerClient // nil when no engine answers
	skipMsg string                       // why the tests skip, when cli is nil
}

// TestMain disables Ryuk before testcontainers reads its configuration,
// probes the Docker engine, runs the tests and removes the images built.
func TestMain(m *testing.M) {
	// testcontainers reads its configuration once, at its first use:
	// this must come before any testcontainers call.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	// testcontainers logs every container step to stderr by default;
	// the tests pass it their own logger (shown on failure or -v).
	tclog.SetDefault(tclog.NewNoopLogger())

	if err := probeDocker(); err != nil {
		msg := strings.Join(strings.Fields(err.Error()), " ") // one line
		docker.skipMsg = fmt.Sprintf("no Docker engine: %s (the container suite needs one; it never pulls images)", msg)
	}
	code := m.Run()
	removeImages()
	if docker.cli != nil {
		docker.cli.Close()
	}
	os.Exit(code)
}

// probeDocker connects to the engine testcontainers would use and pings
// it.
func probeDocker() (err error) {
	defer func() {
		if r := recover(); r != nil { // older testcontainers panicked here without Docker
			err = fmt.Errorf("%v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return err
	}
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		cli.Close()
		return err
	}
	docker.cli = cli
	return nil
}

// needDocker skips t when no Docker engine answers.
func needDocker(t *testing.T) {
	t.Helper()
	if docker.cli == nil {
		t.Skip(docker.skipMsg)
	}
}

// images are built once per test run: the processor and dev-broker targets
// of the repository's Dockerfile.
var images struct {
	once              sync.Once
	processor, broker string
	dir               string
	err               error
	log               string
}

func removeImages() {
	if images.dir != "" {
		os.RemoveAll(images.dir)
	}
	if docker.cli == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, img := range []string{images.processor, images.broker} {
		if img != "" {
			// PruneChildren removes the untagged layers under the tag;
			// the empty "dirs" stage stays as build cache.
			docker.cli.ImageRemove(ctx, img, client.ImageRemoveOptions{Force: true, PruneChildren: true}) //nolint:errcheck // best effort
		}
	}
}
