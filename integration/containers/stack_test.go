package containers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/changelog"
	"github.com/weirstream/weir/engine"
)

const (
	// testLabel marks every container, volume and network (and the
	// images) the suite creates.
	testLabel = "weir.test"

	brokerAlias = "broker"
	brokerAddr  = brokerAlias + ":9092" // advertised; see the package doc
	httpPort    = "8080/tcp"            // the processor image's WEIR_HTTP port

	// sessionTimeout is the processors' --session-timeout: a silent
	// (paused, cut off, killed) member loses its partitions after it.
	sessionTimeout = 3 * time.Second

	inputTopic  = "clicks"            // window-count's default input
	outputTopic = "clicks-per-window" // and output
	countStore  = "count-store"       // window-count's store
	partitions  = 8

	// Deadlines: generous, since nothing waits for them unless a
	// condition is not met yet. A group change takes a session timeout
	// (for a silent member) and a few heartbeats.
	startTimeout = 60 * time.Second
	groupTimeout = 90 * time.Second
	readTimeout  = 90 * time.Second
)

// image returns the processor and dev-broker images, building them on
// first use: a static binary from this repository into a temporary build
// context with the repository's Dockerfile and .dockerignore.
func image(t *testing.T) (processor, broker string) {
	t.Helper()
	needDocker(t)
	images.once.Do(func() { images.err = buildImages() })
	if images.err != nil {
		t.Fatalf("building the images: %v\n%s", images.err, images.log)
	}
	return images.processor, images.broker
}

func buildImages() error {
	root, err := filepath.Abs("../..")
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("repository root not found at %s: %w", root, err)
	}
	if images.dir, err = os.MkdirTemp("", "weir-image-"); err != nil {
		return err
	}
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(images.dir, f), b, 0o644); err != nil {
			return err
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go tool not found: %w", err)
	}
	// The Dockerfile's documented build, with the binary written into
	// the build context.
	build := exec.Command(goBin, "build", "-trimpath", "-o", filepath.Join(images.dir, "processor"), "./cmd/processor")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("CGO_ENABLED=0 go build ./cmd/processor: %w\n%s", err, out)
	}

	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return err
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var buildLog bytes.Buffer
	defer func() { images.log = buildLog.String() }()
	tag := fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano())
	for _, target := range []string{"processor", "dev-broker"} {
		req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
			Context:        images.dir,
			Dockerfile:     "Dockerfile",
			Repo:           "weir-" + target,
			Tag:            tag,
			KeepImage:      true, // TestMain removes it once all tests are done
			BuildLogWriter: &buildLog,
			BuildOptionsModifier: func(o *client.ImageBuildOptions) {
				o.Target = target
				o.Labels = map[string]string{testLabel: "containers"}
			},
		}}
		img, err := p.BuildImage(ctx, req)
		if err != nil {
			return fmt.Errorf("docker build --target %s: %w", target, err)
		}
		if target == "processor" {
			images.processor = img
		} else {
			images.broker = img
		}
	}
	return nil
}

// stack is one test's deployment: a private network, a dev broker and
// processor containers running window-count under one application id,
// and Kafka clients in the test process.
type stack struct {
	t        *testing.T
	app      string
	args     []string // extra 'processor run' flags
	net      *testcontainers.DockerNetwork
	broker   testcontainers.Container
	hostAddr string // the broker's port mapped on the host
	adm      *kadm.Client
	prod     *kgo.Client
	procs    []*proc
}

// proc is one processor container and its state volume.
type proc struct {
	s      *stack
	name   string
	c      testcontainers.Container
	volume string
	paused bool
}

// newStack starts the network and the broker, and creates the input
// topic. Processors come with startProc.
func newStack(t *testing.T, app string, args ...string) *stack {
	t.Helper()
	_, brokerImg := image(t)
	ctx := ctxFor(t, startTimeout)
	s := &stack{t: t, app: app, args: args}

	nw, err := tcnetwork.New(ctx, tcnetwork.WithLabels(map[string]string{testLabel: app}))
	if err != nil {
		t.Fatalf("docker network create: %v", err)
	}
	t.Cleanup(func() { // registered first: runs after every container is gone
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := nw.Remove(ctx); err != nil {
			t.Errorf("docker network rm %s: %v", nw.Name, err)
		}
	})
	s.net = nw

	s.broker = s.container(ctx, "broker", testcontainers.ContainerRequest{
		Image:          brokerImg,
		Cmd:            []string{"--advertise", brokerAddr, "--partitions", strconv.Itoa(partitions)},
		ExposedPorts:   []string{"9092/tcp"},
		Networks:       []string{nw.Name},
		NetworkAliases: map[string][]string{nw.Name: {brokerAlias}},
		WaitingFor:     wait.ForLog("dev broker listening on " + brokerAddr).WithStartupTimeout(startTimeout),
	})
	s.hostAddr = mappedHost(t, ctx, s.broker, "9092/tcp")

	if s.adm, err = kadm.NewOptClient(s.kafkaOpts()...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.adm.Close)
	s.prod, err = kgo.NewClient(append(s.kafkaOpts(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.prod.Close)
	resp, err := s.adm.CreateTopic(ctx, partitions, 1, nil, inputTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", inputTopic, err)
	}
	return s
}

// mappedHost returns host:port where c's port is published, choosing the
// host once per run. testcontainers guesses it: "localhost" for a local
// engine, or, when the test runs inside a container, that container's
// default gateway, which assumes the engine runs outside it. With the
// engine inside the same container (Docker in Docker, as on the project's
// machines), the ports are on 127.0.0.1 and the gateway refuses them. So
// the first of testcontainers' guess and 127.0.0.1 that accepts a
// connection wins, and TESTCONTAINERS_HOST_OVERRIDE (unless the user set
// it) carries the choice to testcontainers' own wait strategies.
func mappedHost(t *testing.T, ctx context.Context, c testcontainers.Container, port string) string {
	t.Helper()
	p, err := c.MappedPort(ctx, port)
	if err != nil {
		t.Fatalf("mapped port %s: %v", port, err)
	}
	guess, err := c.Host(ctx)
	if err != nil {
		t.Fatalf("docker host: %v", err)
	}
	var tried []string
	for _, h := range []string{guess, "127.0.0.1"} {
		addr := net.JoinHostPort(h, p.Port())
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			tried = append(tried, err.Error())
			continue
		}
		conn.Close()
		if _, set := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); !set && h != guess {
			t.Logf("published ports answer on %s, not on testcontainers' guess %s: setting TESTCONTAINERS_HOST_OVERRIDE=%s", h, guess, h)
			os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", h)
		}
		return addr
	}
	t.Fatalf("the broker's published port %s answers on no host tried: %s (set TESTCONTAINERS_HOST_OVERRIDE to the host where Docker publishes ports)", p.Port(), strings.Join(tried, "; "))
	return ""
}

// kafkaOpts are the options of every Kafka client of the test process.
func (s *stack) kafkaOpts() []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(brokerAddr), kgo.Dialer(s.dial)}
}

// dial sends the broker's advertised address to its port on the host (see
// the package doc).
func (s *stack) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if addr == brokerAddr {
		addr = s.hostAddr
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// container creates and starts a container with the suite's label and
// registers its removal. If the test failed, the removal logs the tail of
// the container's output first.
func (s *stack) container(ctx context.Context, name string, req testcontainers.ContainerRequest) testcontainers.Container {
	t := s.t
	t.Helper()
	req.Labels = map[string]string{testLabel: s.app}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: req,
		Started:          true,
		Logger:           tclog.TestLogger(t),
	})
	if c != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if t.Failed() {
				t.Logf("%s (%s) output, last lines:\n%s", name, c.GetContainerID()[:12], tail(logsOf(ctx, c), 150))
			}
			// A paused container cannot be stopped.
			docker.cli.ContainerUnpause(ctx, c.GetContainerID(), client.ContainerUnpauseOptions{}) //nolint:errcheck // most are not paused
			if err := c.Terminate(ctx, testcontainers.StopTimeout(time.Second)); err != nil {
				t.Errorf("removing %s: %v", name, err)
			}
		})
	}
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return c
}

// startProc starts processor container name, with state volume vol
// (created, empty, if it does not exist yet).
func (s *stack) startProc(name, vol string) *proc {
	t := s.t
	t.Helper()
	procImg, _ := image(t)
	ctx := ctxFor(t, startTimeout)
	s.volume(ctx, vol)
	args := []string{"run",
		"--topology", "window-count",
		"--brokers", brokerAddr,
		"--app-id", s.app,
		"--state-dir", "/state",
		"--http", "0.0.0.0:8080",
		"--session-timeout", sessionTimeout.String(),
		// The oracle assumes no idleness: an idle input partition
		// would let the watermark pass clicks still to come there.
		"--idle-timeout", "0",
	}
	p := &proc{s: s, name: name, volume: vol}
	p.c = s.container(ctx, name, testcontainers.ContainerRequest{
		Image:        procImg,
		Cmd:          append(args, s.args...),
		ExposedPorts: []string{httpPort},
		Networks:     []string{s.net.Name},
		Mounts:       testcontainers.Mounts(testcontainers.VolumeMount(vol, "/state")),
		ConfigModifier: func(c *container.Config) {
			// The image's HEALTHCHECK command, run every second
			// rather than every 10s (the daemon fills in what is
			// left empty from the image).
			c.Healthcheck = &container.HealthConfig{Interval: time.Second}
		},
		HostConfigModifier: func(hc *container.HostConfig) {
			// As deployed: a processor that stops on an error (the
			// engine's answer to a producer it cannot trust) is
			// started again. Docker does not restart a container the
			// test stopped or killed.
			hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyOnFailure}
		},
		WaitingFor: wait.ForHTTP("/healthz").WithPort(httpPort).WithStartupTimeout(startTimeout),
	})
	s.procs = append(s.procs, p)
	return p
}

// volume creates a named volume, removed at cleanup (after the containers
// that use it, whose cleanups are registered later).
func (s *stack) volume(ctx context.Context, name string) {
	t := s.t
	if _, err := docker.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{}); err == nil {
		return
	}
	if _, err := docker.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: map[string]string{testLabel: s.app}}); err != nil {
		t.Fatalf("docker volume create %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := docker.cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true}); err != nil {
			t.Errorf("docker volume rm %s: %v", name, err)
		}
	})
}

// uniqueName returns a Docker object name for this test run.
func uniqueName(t *testing.T, what string) string {
	return fmt.Sprintf("weir-test-%s-%s-%d", strings.ToLower(regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")), what, time.Now().UnixNano())
}

// --- faults ---

// stop is 'docker stop': SIGTERM, and the processor must exit on its own,
// with status 0, well within Docker's grace period.
func (p *proc) stop() {
	t := p.s.t
	t.Helper()
	grace := 30 * time.Second
	start := time.Now()
	if err := p.c.Stop(ctxFor(t, time.Minute), &grace); err != nil {
		t.Fatalf("docker stop %s: %v", p.name, err)
	}
	st := p.inspect().State
	if st.ExitCode != 0 || time.Since(start) > grace-time.Second {
		t.Fatalf("docker stop %s: exit code %d after %v, want 0 before the %v grace period ends", p.name, st.ExitCode, time.Since(start).Round(time.Millisecond), grace)
	}
}

// kill is 'docker kill': SIGKILL.
func (p *proc) kill() {
	t := p.s.t
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	if _, err := docker.cli.ContainerKill(ctx, p.c.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatalf("docker kill %s: %v", p.name, err)
	}
	waitFor(t, startTimeout, func() string { return p.name + " to exit" }, func() bool { return !p.inspect().State.Running })
	if code := p.inspect().State.ExitCode; code != 137 {
		t.Fatalf("docker kill %s: exit code %d, want 137 (SIGKILL)", p.name, code)
	}
}

// start is 'docker start' of a stopped or killed container: same
// container, same state volume. It waits for /healthz.
func (p *proc) start() {
	t := p.s.t
	t.Helper()
	if err := p.c.Start(ctxFor(t, startTimeout)); err != nil {
		t.Fatalf("docker start %s: %v", p.name, err)
	}
}

func (p *proc) pause() {
	t := p.s.t
	t.Helper()
	if _, err := docker.cli.ContainerPause(ctxFor(t, time.Minute), p.c.GetContainerID(), client.ContainerPauseOptions{}); err != nil {
		t.Fatalf("docker pause %s: %v", p.name, err)
	}
	p.paused = true
}

func (p *proc) unpause() {
	t := p.s.t
	t.Helper()
	if _, err := docker.cli.ContainerUnpause(ctxFor(t, time.Minute), p.c.GetContainerID(), client.ContainerUnpauseOptions{}); err != nil {
		t.Fatalf("docker unpause %s: %v", p.name, err)
	}
	p.paused = false
}

// disconnect is 'docker network disconnect': the processor loses the
// broker (its only network) and its mapped port.
func (p *proc) disconnect() {
	t := p.s.t
	t.Helper()
	if _, err := docker.cli.NetworkDisconnect(ctxFor(t, time.Minute), p.s.net.ID, client.NetworkDisconnectOptions{Container: p.c.GetContainerID(), Force: true}); err != nil {
		t.Fatalf("docker network disconnect %s: %v", p.name, err)
	}
}

// connect is 'docker network connect': Docker maps the HTTP port again, on
// a new host port (p.url looks it up each time).
func (p *proc) connect() {
	t := p.s.t
	t.Helper()
	if _, err := docker.cli.NetworkConnect(ctxFor(t, time.Minute), p.s.net.ID, client.NetworkConnectOptions{Container: p.c.GetContainerID()}); err != nil {
		t.Fatalf("docker network connect %s: %v", p.name, err)
	}
}

func (p *proc) inspect() *container.InspectResponse {
	t := p.s.t
	t.Helper()
	in, err := p.c.Inspect(ctxFor(t, time.Minute))
	if err != nil {
		t.Fatalf("docker inspect %s: %v", p.name, err)
	}
	return in
}

// --- HTTP ---

var httpClient = &http.Client{Timeout: 3 * time.Second}

// get fetches path from the processor's HTTP server through its mapped
// port, looked up now (it changes on restart and reconnect).
func (p *proc) get(path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ep, err := p.c.PortEndpoint(ctx, httpPort, "http")
	if err != nil {
		return "", err
	}
	resp, err := httpClient.Get(ep + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return string(b), nil
}

// tasks returns the ids of the tasks the processor says it owns.
func (p *proc) tasks() ([]string, error) {
	body, err := p.get("/api/tasks")
	if err != nil {
		return nil, err
	}
	var ts []engine.TaskInfo
	if err := json.Unmarshal([]byte(body), &ts); err != nil {
		return nil, fmt.Errorf("/api/tasks: %w: %q", err, body)
	}
	ids := make([]string, len(ts))
	for i, task := range ts {
		ids[i] = task.ID
	}
	slices.Sort(ids)
	return ids, nil
}

// metric returns the value of one Prometheus series ("name" or
// `name{label="v"}`) of the processor, 0 if absent.
func (p *proc) metric(series string) float64 {
	t := p.s.t
	t.Helper()
	body, err := p.get("/metrics")
	if err != nil {
		t.Fatalf("%s /metrics: %v", p.name, err)
	}
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s /metrics: %q: %v", p.name, line, err)
			}
			return v
		}
	}
	return 0
}

// allTasks are window-count's tasks: sub-topology 0 reads the input, 1 the
// repartition topic; one task per partition of each.
func allTasks() []string {
	var ids []string
	for sub := range 2 {
		for part := range partitions {
			ids = append(ids, fmt.Sprintf("%d_%d", sub, part))
		}
	}
	slices.Sort(ids)
	return ids
}

// waitGroup waits until the group has recovered with exactly the members
// live: the broker's group is stable with len(live) members, each of them
// owns some tasks (per its /api/tasks), and together they own every task
// once.
func (s *stack) waitGroup(what string, live ...*proc) {
	t := s.t
	t.Helper()
	want := allTasks()
	var last string
	start := time.Now()
	deadline := start.Add(groupTimeout)
	for {
		ok, state := s.groupState(live, want)
		if ok {
			t.Logf("%s: the group recovered in %v: %s", what, time.Since(start).Round(100*time.Millisecond), state)
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("%s: the group did not recover within %v: %s", what, groupTimeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *stack) groupState(live []*proc, want []string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	groups, err := s.adm.DescribeGroups(ctx, s.app)
	if err != nil {
		return false, "describe group: " + err.Error()
	}
	g := groups[s.app]
	if g.Err != nil {
		return false, "describe group: " + g.Err.Error()
	}
	if g.State != "Stable" || len(g.Members) != len(live) {
		return false, fmt.Sprintf("group %s with %d members, want Stable with %d", g.State, len(g.Members), len(live))
	}
	owner := make(map[string]string)
	var parts []string
	for _, p := range live {
		ids, err := p.tasks()
		if err != nil {
			return false, fmt.Sprintf("%s: %v", p.name, err)
		}
		if len(ids) == 0 {
			return false, p.name + " owns no task"
		}
		for _, id := range ids {
			if o, dup := owner[id]; dup {
				return false, fmt.Sprintf("task %s owned by %s and %s", id, o, p.name)
			}
			owner[id] = p.name
		}
		parts = append(parts, fmt.Sprintf("%s %v", p.name, ids))
	}
	for _, id := range want {
		if owner[id] == "" {
			return false, "nobody owns task " + id
		}
	}
	if len(owner) != len(want) {
		return false, fmt.Sprintf("%d tasks owned, want %d", len(owner), len(want))
	}
	return true, strings.Join(parts, ", ")
}

// --- logs ---

func logsOf(ctx context.Context, c testcontainers.Container) string {
	rc, err := c.Logs(ctx)
	if err != nil {
		return fmt.Sprintf("(logs: %v)", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return string(b) + fmt.Sprintf("\n(logs: %v)", err)
	}
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... %d lines before", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// restored is one "restored" log line of a processor.
type restored struct {
	task, store        string
	from, end, records int64
}

var restoredRE = regexp.MustCompile(`msg=restored .*task=(\S+) store=(\S+) from=(\d+) end=(\d+) records=(\d+)`)

// restoresSinceStart returns the restore log lines of the processor's
// current run: those after the last "http server listening" line, which
// each start logs first.
func (p *proc) restoresSinceStart() []restored {
	t := p.s.t
	t.Helper()
	logs := logsOf(ctxFor(t, time.Minute), p.c)
	if i := strings.LastIndex(logs, `msg="http server listening"`); i >= 0 {
		logs = logs[i:]
	} else {
		t.Fatalf("%s: no start line in its output:\n%s", p.name, tail(logs, 50))
	}
	var out []restored
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := restoredRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
		out = append(out, restored{task: m[1], store: m[2], from: n(m[3]), end: n(m[4]), records: n(m[5])})
	}
	return out
}

// --- Kafka ---

// produce writes records and waits for their acknowledgement.
func (s *stack) produce(recs []*kgo.Record) {
	t := s.t
	t.Helper()
	if err := s.prod.ProduceSync(ctxFor(t, time.Minute), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// endOffsets returns the high watermark of every partition of topic.
func (s *stack) endOffsets(topic string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := s.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	m := make(map[int32]int64)
	ends.Each(func(lo kadm.ListedOffset) { m[lo.Partition] = lo.Offset })
	return m, nil
}

// changelogLength is the sum of the end offsets of the count store's
// changelog: every record it ever held, and the transaction markers.
func (s *stack) changelogLength() int64 {
	t := s.t
	t.Helper()
	ends, err := s.endOffsets(changelog.Topic(s.app, countStore))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ends {
		n += e
	}
	return n
}

// readRange reads topic read_committed from from[p] (0 if absent) to to[p]
// in every partition of to and returns the data records. Offsets are not
// record counts: transaction markers take offsets and aborted records are
// skipped, so the reader keeps control records to see its position reach
// the end. It gives up after timeout, returning false and why.
func (s *stack) readRange(topic string, from, to map[int32]int64, timeout time.Duration) ([]*kgo.Record, bool, string) {
	parts := make(map[int32]kgo.Offset)
	next := make(map[int32]int64)
	for p, end := range to {
		if from[p] < end {
			parts[p] = kgo.NewOffset().At(from[p])
			next[p] = from[p]
		}
	}
	if len(parts) == 0 {
		return nil, true, ""
	}
	cl, err := kgo.NewClient(append(s.kafkaOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return nil, false, err.Error()
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	behind := func() string {
		var b []string
		for p, n := range next {
			if n < to[p] {
				b = append(b, fmt.Sprintf("%s[%d] at %d of %d", topic, p, n, to[p]))
			}
		}
		slices.Sort(b)
		return strings.Join(b, ", ")
	}
	var data []*kgo.Record
	for behind() != "" {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return data, false, "reading stopped (an open transaction?): " + behind()
		}
		var errs []string
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				errs = append(errs, fmt.Sprintf("%s[%d]: %v", t, p, err))
			}
		})
		if len(errs) > 0 {
			return data, false, strings.Join(errs, "; ")
		}
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() && r.Offset < to[r.Partition] {
				data = append(data, r)
			}
		})
	}
	return data, true, ""
}

// caughtUp reports whether the group has consumed every committed record
// of topic: its committed offset is the end offset, or only transaction
// markers and aborted records lie between the two.
func (s *stack) caughtUp(topic string) (bool, string) {
	ends, err := s.endOffsets(topic)
	if err != nil {
		return false, err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.adm.FetchOffsetsForTopics(ctx, s.app, topic)
	if err != nil {
		return false, err.Error()
	}
	committed := make(map[int32]int64)
	var state []string
	for p, end := range ends {
		if o, ok := resp.Lookup(topic, p); ok && o.Err == nil && o.At >= 0 {
			committed[p] = o.At
		}
		if committed[p] != end {
			state = append(state, fmt.Sprintf("%s[%d] committed %d end %d", topic, p, committed[p], end))
		}
	}
	if len(state) == 0 {
		return true, ""
	}
	slices.Sort(state)
	data, ok, why := s.readRange(topic, committed, ends, 2*time.Second)
	if !ok {
		return false, strings.Join(state, ", ") + ": " + why
	}
	if len(data) > 0 {
		return false, strings.Join(state, ", ") + fmt.Sprintf(": %d records not consumed", len(data))
	}
	return true, ""
}

// waitCaughtUp waits until the group has consumed all of the input, then
// all of the repartition topic: in that order, what the first fed into the
// second is final when the second is checked (exactly-once: a task commits
// its input offsets in the transaction of its outputs).
func (s *stack) waitCaughtUp() {
	t := s.t
	t.Helper()
	for _, topic := range []string{inputTopic, repartitionTopic(s.app)} {
		var last string
		waitFor(t, readTimeout, func() string { return fmt.Sprintf("the group to consume all of %s (%s)", topic, last) }, func() bool {
			ok, state := s.caughtUp(topic)
			last = state
			return ok
		})
	}
}

// readAll reads every committed data record of topic up to its end
// offsets now.
func (s *stack) readAll(topic string) []*kgo.Record {
	t := s.t
	t.Helper()
	ends, err := s.endOffsets(topic)
	if err != nil {
		t.Fatal(err)
	}
	data, ok, why := s.readRange(topic, nil, ends, readTimeout)
	if !ok {
		t.Fatalf("reading %s to its end: %s", topic, why)
	}
	return data
}

// readOutput waits for n committed output records (the oracle's count),
// then for the group to consume all its input, and returns every committed
// output record there is then: more than n is a duplicate or a wrong
// result, which checkWindowResults reports.
func (s *stack) readOutput(n int) []*kgo.Record {
	t := s.t
	t.Helper()
	var got int
	waitFor(t, readTimeout, func() string { return fmt.Sprintf("%d results in %s (%d so far)", n, outputTopic, got) }, func() bool {
		ends, err := s.endOffsets(outputTopic)
		if err != nil {
			return false
		}
		data, ok, _ := s.readRange(outputTopic, nil, ends, 10*time.Second)
		got = len(data)
		return ok && got >= n
	})
	s.waitCaughtUp()
	return s.readAll(outputTopic)
}

// --- helpers ---

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds, failing the test with what was
// awaited if timeout passes first.
func waitFor(t testing.TB, timeout time.Duration, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
