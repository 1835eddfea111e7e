package kafkaio

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	killTopic      = "killed-txns"
	killPartitions = 8
)

// txnProducer is the child process of TestKilledTransactionalProducers: it
// commits transactions of one record per partition of killTopic (as a
// weir task writes its control records to every partition of a
// repartition topic), printing "committed LABEL" after each commit, until
// it is killed or has committed count of them.
func txnProducer(addr, gen, count string) int {
	n, _ := strconv.Atoi(count) // 0: until killed
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("killed-producer"),
		kgo.TransactionTimeout(2*time.Second), kgo.DefaultProduceTopic(killTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer cl.Close()
	ctx := context.Background()
	for i := 0; n == 0 || i < n; i++ {
		label := gen + "-" + strconv.Itoa(i)
		if err := cl.BeginTransaction(); err != nil {
			fmt.Fprintln(os.Stderr, "begin:", err)
			return 2
		}
		for p := range killPartitions {
			cl.Produce(ctx, &kgo.Record{Partition: int32(p), Key: []byte(label)}, nil)
		}
		err := cl.Flush(ctx)
		commit := kgo.TryCommit
		if err != nil {
			commit = kgo.TryAbort
		}
		if err := cl.EndTransaction(ctx, commit); err != nil || commit == kgo.TryAbort {
			fmt.Fprintln(os.Stderr, "end:", label, err)
			return 2
		}
		fmt.Println("committed", label)
	}
	return 0
}

// runProducer starts a txnProducer child and returns once it committed its
// first transaction; committed receives every label it prints.
func runProducer(t *testing.T, addr, gen string, count int, committed chan<- string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WEIR_TEST_TXN_PRODUCER="+addr, "WEIR_TEST_TXN_GEN="+gen, "WEIR_TEST_TXN_COUNT="+strconv.Itoa(count))
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for n := 0; sc.Scan(); n++ {
			if label, ok := strings.CutPrefix(sc.Text(), "committed "); ok {
				committed <- label
			}
			if n == 0 {
				close(first)
			}
		}
	}()
	select {
	case <-first:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("producer %s committed nothing", gen)
	}
	return cmd
}

// TestKilledTransactionalProducers kills (SIGKILL) a transactional producer
// at random moments of its transactions, each time restarting it with the
// same transactional id (as weir restarts on its state directory), and at
// the end leaves it dead with whatever it had open. Every partition's last
// stable offset must then reach its high watermark (the restarts and the
// transaction timeout abort what was open), and read_committed readers
// must see each committed transaction whole, once, and no other record.
func TestKilledTransactionalProducers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	b := quietBroker(t, DevBrokerConfig{Partitions: killPartitions})
	adm := kadm.NewClient(newClient(t, b))
	if _, err := adm.CreateTopic(ctx, killPartitions, 1, nil, killTopic); err != nil {
		t.Fatal(err)
	}
	committed := make(chan string, 1<<16)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("WEIR_KILL_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("WEIR_KILL_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 13))
	const kills = 12
	for k := range kills {
		cmd := runProducer(t, b.Addr(), "g"+strconv.Itoa(k), 0, committed)
		// The moment of the kill: anywhere in a transaction or
		// between two (not a wait for a condition).
		time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}

	// The last life is dead: its open transaction, if any, must time out.
	for p := range int32(killPartitions) {
		waitStable(t, ctx, b, p)
	}
	// A new life still commits, and readers see it.
	cmd := runProducer(t, b.Addr(), "last", 3, committed)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("last producer: %v", err)
	}
	for p := range int32(killPartitions) {
		waitStable(t, ctx, b, p)
	}
	close(committed)
	want := map[string]bool{}
	for l := range committed {
		want[l] = true
	}

	// Read every partition to its end (read_committed).
	ends := map[int32]int64{}
	for p := range int32(killPartitions) {
		ends[p] = b.Cluster().PartitionInfo(killTopic, p).HighWatermark
	}
	rd := newClient(t, b, kgo.ConsumeTopics(killTopic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]map[int32]int{}
	done := map[int32]bool{}
	// A plain record at the end of each partition marks where to stop.
	plain := newClient(t, b, kgo.DefaultProduceTopic(killTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range int32(killPartitions) {
		if err := plain.ProduceSync(ctx, &kgo.Record{Partition: p, Key: []byte("end")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for len(done) < killPartitions {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading: %v; partitions done %v, ends %v", ctx.Err(), done, ends)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == "end" {
				done[r.Partition] = true
				return
			}
			if seen[string(r.Key)] == nil {
				seen[string(r.Key)] = map[int32]int{}
			}
			seen[string(r.Key)][r.Partition]++
		})
	}
	for l := range want {
		if seen[l] == nil {
			t.Errorf("transaction %s committed (the producer said so) but read_committed does not see it", l)
		}
	}
	for l, ps := range seen {
		if len(ps) != killPartitions {
			t.Errorf("transaction %s seen on %d partitions, want all %d: %v", l, len(ps), killPartitions, ps)
		}
		for p, n := range ps {
			if n != 1 {
				t.Errorf("transaction %s seen %d times on partition %d", l, n, p)
			}
		}
	}
	t.Logf("%d kills, %d transactions committed as reported, %d seen", kills, len(want), len(seen))
}

// waitStable waits until partition p's last stable offset is its high
// watermark: no transaction is open on it.
func waitStable(t *testing.T, ctx context.Context, b *DevBroker, p int32) {
	t.Helper()
	for {
		pi := b.Cluster().PartitionInfo(killTopic, p)
		if pi.LastStableOffset == pi.HighWatermark {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("partition %d: last stable offset %d stuck below the high watermark %d", p, pi.LastStableOffset, pi.HighWatermark)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
