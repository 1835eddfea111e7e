package kafkaio

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMain doubles as a dev broker process for the kill tests: with
// WEIR_TEST_BROKER_ADDR and WEIR_TEST_BROKER_DIR set it runs a broker on
// that address and data directory until it is killed.
func TestMain(m *testing.M) {
	if addr := os.Getenv("WEIR_TEST_BROKER_ADDR"); addr != "" {
		b, err := StartDevBroker(DevBrokerConfig{Listen: addr, DataDir: os.Getenv("WEIR_TEST_BROKER_DIR"), Partitions: 1,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("ready", b.Addr())
		select {}
	}
	if addr := os.Getenv("WEIR_TEST_TXN_PRODUCER"); addr != "" {
		os.Exit(txnProducer(addr, os.Getenv("WEIR_TEST_TXN_GEN"), os.Getenv("WEIR_TEST_TXN_COUNT")))
	}
	os.Exit(m.Run())
}

// brokerProcess runs a dev broker in a child process (this test binary).
type brokerProcess struct {
	cmd  *exec.Cmd
	addr string
}

func startBrokerProcess(t *testing.T, addr, dir string) *brokerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WEIR_TEST_BROKER_ADDR="+addr, "WEIR_TEST_BROKER_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &brokerProcess{cmd: cmd, addr: addr}
	t.Cleanup(func() { p.kill(t) })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("broker process: %v", err)
	}
	if want := "ready " + addr + "\n"; line != want {
		t.Fatalf("broker process said %q, want %q", line, want)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *brokerProcess) kill(t *testing.T) {
	if p.cmd.ProcessState != nil {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Errorf("kill broker: %v", err)
	}
	_ = p.cmd.Wait()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// readAddrUntil reads partition 0 of topic at addr with read_committed
// until a record with key stop, and returns the values by key.
func readAddrUntil(t *testing.T, ctx context.Context, addr, topic, stop string) map[string][]string {
	t.Helper()
	cl := client(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	vals := make(map[string][]string)
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v (values so far %q)", topic, err, vals)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch %s: %v", topic, err) })
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == stop {
				done = true
				return
			}
			vals[string(r.Key)] = append(vals[string(r.Key)], string(r.Value))
		})
		if done {
			return vals
		}
	}
}

// TestDevBrokerDataDirSurvivesKillWithOpenTransaction: a broker killed
// (SIGKILL) with a transaction open, restarted on its data directory. The
// open transaction is aborted; the producer's next life (same
// transactional id) commits, and read_committed readers must see that
// commit. kfake alone aborts the open transaction in memory without an
// abort marker, and readers, told the producer's transaction aborted,
// skip its batches until a marker that never comes: the commit too.
func TestDevBrokerDataDirSurvivesKillWithOpenTransaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	addr, dir := freeAddr(t), t.TempDir()
	p := startBrokerProcess(t, addr, dir)

	if _, err := kadm.NewClient(client(t, addr)).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	// Another producer's transaction committed before the kill.
	other := client(t, addr, kgo.DefaultProduceTopic("t"), kgo.TransactionalID("app-2"))
	if err := other.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := other.ProduceSync(ctx, &kgo.Record{Key: []byte("other"), Value: []byte("committed before the kill")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := other.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	first, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t"), kgo.TransactionalID("app-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := first.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("open at the kill")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p.kill(t)
	go first.Close() // its broker is gone; nothing to wait for

	startBrokerProcess(t, addr, dir)
	next := client(t, addr, kgo.DefaultProduceTopic("t"), kgo.TransactionalID("app-1"))
	if err := next.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := next.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := next.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if err := client(t, addr, kgo.DefaultProduceTopic("t")).ProduceSync(ctx, &kgo.Record{Key: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := readAddrUntil(t, ctx, addr, "t", "end")
	if want := map[string][]string{"k": {"committed"}, "other": {"committed before the kill"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after the restart, read_committed reads %q; want %q", got, want)
	}
}

// TestDevBrokerDataDirCleanRestart: a broker closed cleanly leaves no
// running mark, and its records are there after a restart.
func TestDevBrokerDataDirCleanRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := StartDevBroker(DevBrokerConfig{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(runningFile(dir)); err != nil {
		t.Fatalf("running mark while the broker runs: %v", err)
	}
	if _, err := kadm.NewClient(client(t, b.Addr())).CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	p := client(t, b.Addr(), kgo.DefaultProduceTopic("t"), kgo.TransactionalID("app"))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	p.Close()
	b.Close()
	if _, err := os.Stat(runningFile(dir)); !os.IsNotExist(err) {
		t.Fatalf("running mark after a clean close: %v", err)
	}
	b, err = StartDevBroker(DevBrokerConfig{Listen: "127.0.0.1:0", DataDir: dir, Partitions: 1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := client(t, b.Addr(), kgo.DefaultProduceTopic("t")).ProduceSync(ctx, &kgo.Record{Key: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := readAddrUntil(t, ctx, b.Addr(), "t", "end"); !reflect.DeepEqual(got, map[string][]string{"k": {"committed"}}) {
		t.Fatalf("after a clean restart, read_committed reads %q; want k=[committed]", got)
	}
}
