package benchcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/internal/cliutil"
	"github.com/weirstream/weir/nexmark"
)

// gen writes generated events to a topic.
func (c *cli) gen(ctx context.Context, args []string) error {
	fs := c.flagSet("gen")
	kind := fs.String("kind", "nexmark", "what to generate: nexmark")
	brokers := fs.String("brokers", "", "comma-separated seed brokers, host:port (required)")
	topic := fs.String("topic", "nexmark", "topic to write (created with --partitions if missing)")
	events := fs.Int64("events", 1_000_000, "number of events")
	gcfg := nexmark.DefaultConfig()
	fs.Uint64Var(&gcfg.Seed, "seed", gcfg.Seed, "generator seed: the same seed writes the same events")
	fs.Float64Var(&gcfg.Rate, "rate", gcfg.Rate, "event-time rate: events per second of event time (date_time advances 1/rate s per event)")
	baseTime := baseTimeFlag(fs)
	partitions := fs.Int("partitions", 8, "partitions of the topic if it is created; event n goes to partition n mod the topic's partitions")
	endMarker := fs.Bool("end-marker", true, "after the events, write one person event per partition one day later in event time, so every window closes")
	if err := cliutil.Parse(fs, args); err != nil {
		return err
	}
	if *kind != "nexmark" {
		return cliutil.UsageError{Err: fmt.Errorf("--kind %q: want nexmark", *kind)}
	}
	if *events < 0 || *partitions < 1 {
		return cliutil.UsageError{Err: errors.New("--events must be >= 0 and --partitions >= 1")}
	}
	seeds := cliutil.SplitList(*brokers)
	if len(seeds) == 0 {
		return cliutil.UsageError{Err: errors.New("--brokers is required (e.g. the address printed by 'processor dev-broker')")}
	}
	gcfg.BaseTime = baseTime()
	g, err := nexmark.NewGenerator(gcfg)
	if err != nil {
		return cliutil.UsageError{Err: err}
	}
	start := time.Now()
	n, err := produceNexmark(ctx, seeds, *topic, g, *events, int32(*partitions), *endMarker)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote %d events (%d records) to %q in %.1fs\n", *events, n, *topic, time.Since(start).Seconds())
	return nil
}

// produceNexmark writes events [0, events) of g to topic, event n to
// partition n mod the topic's partition count (creating the topic with
// partitions if it does not exist), and an end marker per partition when
// endMarker is set. It returns the number of records written.
func produceNexmark(ctx context.Context, brokers []string, topic string, g *nexmark.Generator, events int64, partitions int32, endMarker bool) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(1<<16), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cctx, cancel := context.WithTimeout(ctx, cliutil.WaitTimeout)
	resp, err := adm.CreateTopic(cctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		var td kadm.TopicDetails
		if td, err = adm.ListTopics(cctx, topic); err == nil {
			if err = td.Error(); err == nil {
				partitions = int32(len(td[topic].Partitions))
			}
		}
	}
	cancel()
	if err != nil {
		return 0, fmt.Errorf("topic %q: %w", topic, err)
	}
	var failed atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	var written int64
	for n := range events {
		if n%4096 == 0 {
			if ctx.Err() != nil {
				return written, ctx.Err()
			}
			if p := failed.Load(); p != nil {
				return written, fmt.Errorf("produce to %q: %w", topic, *p)
			}
		}
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: nexmark.Partition(n, int(partitions)),
			Value: g.AppendJSON(make([]byte, 0, 256), n), Timestamp: time.UnixMilli(g.Timestamp(n))}, promise)
		written++
	}
	if endMarker {
		ts := g.Timestamp(events) + nexmark.EndMarkerDelay
		e := nexmark.EndMarker(ts)
		v := nexmark.AppendEvent(nil, &e)
		for p := range partitions {
			cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: p, Value: v, Timestamp: time.UnixMilli(ts)}, promise)
			written++
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return written, err
	}
	if p := failed.Load(); p != nil {
		return written, fmt.Errorf("produce to %q: %w", topic, *p)
	}
	return written, nil
}

// baseTimeFlag registers --base-time. Event times are BaseTime plus a
// deterministic offset; the default base is the current minute, because a
// broker deletes records whose timestamps are older than its retention
// (7 days by default) and repartition records carry event times.
func baseTimeFlag(fs *flag.FlagSet) func() int64 {
	bt := fs.Int64("base-time", 0, "event time of the first event, epoch ms (default: now, rounded down to the minute); with the same --seed and --base-time the events are identical")
	return func() int64 {
		if *bt != 0 {
			return *bt
		}
		now := time.Now().UnixMilli()
		return now - now%60_000
	}
}
