// Command sessionize turns page views (Avro, Schema Registry wire format)
// into user sessions with session windows, run with weir's whole CLI. Two
// extra commands make it runnable with no other infrastructure:
// "dev-registry" serves an in-memory Schema Registry and "produce" writes
// sample page views.
//
//	go run ./examples/sessionize run --brokers 127.0.0.1:9092 --app-id sessions \
//	    --topology sessionize --registry-url http://127.0.0.1:8085
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/app"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/serde/registry"
	"github.com/weirstream/weir/serde/registry/registrytest"
	"github.com/weirstream/weir/topology"
)

func main() {
	if len(os.Args) > 1 {
		var cmd func([]string) error
		switch os.Args[1] {
		case "dev-registry":
			cmd = devRegistry
		case "produce":
			cmd = produce
		}
		if cmd != nil {
			if err := cmd(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "sessionize %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
	}
	app.Main(app.Topology{
		Name: "sessionize",
		Help: "page views (Avro) to user sessions (session windows)",
		Define: func(fs *flag.FlagSet) func() (*topology.Topology, error) {
			cfg := DefaultConfig()
			fs.StringVar(&cfg.Input, "input", cfg.Input, "page views topic (Avro values in the Schema Registry wire format)")
			fs.StringVar(&cfg.Output, "output", cfg.Output, "sessions topic (JSON values, keyed by user)")
			fs.DurationVar(&cfg.Gap, "gap", cfg.Gap, "a session ends after this much inactivity")
			fs.DurationVar(&cfg.OutOfOrderness, "out-of-orderness", cfg.OutOfOrderness, "how late page views may arrive")
			fs.DurationVar(&cfg.Grace, "grace", cfg.Grace, "how long an ended session waits for late views")
			url := fs.String("registry-url", "http://127.0.0.1:8085", "Schema Registry URL")
			user := fs.String("registry-user", "", "Schema Registry basic-auth user (none when empty)")
			pass := fs.String("registry-password", "", "Schema Registry basic-auth password")
			return func() (*topology.Topology, error) {
				var opts []registry.Opt
				if *user != "" {
					opts = append(opts, registry.BasicAuth(*user, *pass))
				}
				c, err := registry.New(*url, opts...)
				if err != nil {
					return nil, err
				}
				// Decode only: every record names its writer's schema id.
				views, err := serde.AvroRegistryTyped(c, "", "", Mapping)
				if err != nil {
					return nil, err
				}
				return Sessionize(cfg, views)
			}
		},
	})
}

// devRegistry serves an in-memory Schema Registry until interrupted.
func devRegistry(args []string) error {
	fs := flag.NewFlagSet("dev-registry", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8085", "host:port to serve on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: registrytest.New(), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Printf("dev registry (in memory) listening on http://%s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// produce writes sample page views: --users users, each with a few
// sessions of a few views, in event-time order per user, spread over the
// topic's partitions.
func produce(args []string) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "seed brokers, comma-separated")
	url := fs.String("registry-url", "http://127.0.0.1:8085", "Schema Registry URL")
	topic := fs.String("topic", DefaultConfig().Input, "topic to write")
	users := fs.Int("users", 5, "number of users")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := registry.New(*url)
	if err != nil {
		return err
	}
	views, err := serde.AvroRegistryTyped(c, serde.ValueSubject(*topic), Schema, Mapping)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*brokers, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 8, -1, nil, *topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return err
	}
	tds, err := adm.ListTopics(ctx, *topic)
	if err != nil {
		return err
	}
	parts := len(tds[*topic].Partitions)
	if parts == 0 {
		return fmt.Errorf("topic %q has no partitions", *topic)
	}
	// Keys go where a Java producer would put them (murmur2).
	partitioner := kgo.StickyKeyPartitioner(nil).ForTopic(*topic)
	send := func(key string, v PageView, p int32) error {
		b, err := views.Encode(v)
		if err != nil {
			return err
		}
		rec := &kgo.Record{Topic: *topic, Key: []byte(key), Value: b, Timestamp: time.UnixMilli(v.TS)}
		rec.Partition = p
		if p < 0 {
			rec.Partition = int32(partitioner.Partition(rec, parts))
		}
		return cl.ProduceSync(ctx, rec).FirstErr()
	}
	start := time.Now().Add(-3 * time.Hour).UnixMilli()
	pages := []string{"/", "/search", "/item/1", "/item/2", "/cart", "/checkout"}
	n := 0
	for u := range *users {
		user := fmt.Sprintf("user-%d", u)
		ts := start + rand.Int64N(60_000)
		for range 1 + rand.IntN(3) { // sessions
			for range 1 + rand.IntN(6) { // views
				if err := send(user, PageView{User: user, Page: pages[rand.IntN(len(pages))], TS: ts}, -1); err != nil {
					return err
				}
				n++
				ts += rand.Int64N(5 * 60_000)
			}
			ts += time.Hour.Milliseconds() // a new session
		}
	}
	// One view a day ahead on every partition, from a user outside the
	// sample, moves every watermark past every session above.
	for p := range parts {
		if err := send("~close", PageView{User: "~close", Page: "/", TS: start + 24*time.Hour.Milliseconds()}, int32(p)); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d page views by %d users to %s (%d partitions), and a closing view per partition\n", n, *users, *topic, parts)
	return nil
}
