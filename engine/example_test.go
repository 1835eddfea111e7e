package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/kafkaio"
)

// One engine running key-count against a development broker: the running
// count per key, committed exactly once, read with read_committed.
func Example() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := kafkaio.StartDevBroker(kafkaio.DevBrokerConfig{Listen: "127.0.0.1:0", Partitions: 4, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("key-counts"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	for _, k := range []string{"a", "b", "a"} {
		cl.ProduceSync(ctx, &kgo.Record{Topic: "input", Key: []byte(k)})
	}

	dir, _ := os.MkdirTemp("", "weir-example-")
	defer os.RemoveAll(dir)
	cfg := engine.DefaultConfig()
	cfg.Brokers, cfg.AppID, cfg.StateDir, cfg.Logger = []string{b.Addr()}, "example", dir, quiet
	e, err := engine.New(builtin.KeyCount("input", "key-counts"), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()

	var got []string
	for len(got) < 3 {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Key)+"="+string(r.Value)) })
	}
	cancel()
	<-done
	sort.Strings(got)
	fmt.Println(got)
	// Output: [a=1 a=2 b=1]
}
