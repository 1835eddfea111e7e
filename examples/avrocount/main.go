// Command avrocount is window-count over Avro input: clicks in the Schema
// Registry wire format, counted per user in tumbling event-time windows,
// run with weir's whole CLI.
//
//	go run ./examples/avrocount run --brokers 127.0.0.1:9092 --app-id avrocount \
//	    --topology avrocount --registry-url http://127.0.0.1:8085
package main

import (
	"flag"

	"github.com/weirstream/weir/app"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/serde/registry"
	"github.com/weirstream/weir/topology"
)

func main() {
	app.Main(app.Topology{
		Name: "avrocount",
		Help: "clicks (Avro) counted per user in tumbling windows",
		Define: func(fs *flag.FlagSet) func() (*topology.Topology, error) {
			cfg := DefaultConfig()
			fs.StringVar(&cfg.Input, "input", cfg.Input, "clicks topic (Avro values in the Schema Registry wire format)")
			fs.StringVar(&cfg.Output, "output", cfg.Output, "results topic (JSON values, keyed by user)")
			fs.DurationVar(&cfg.Window, "window", cfg.Window, "tumbling window size")
			fs.DurationVar(&cfg.OutOfOrderness, "out-of-orderness", cfg.OutOfOrderness, "how late clicks may arrive")
			url := fs.String("registry-url", "http://127.0.0.1:8085", "Schema Registry URL")
			return func() (*topology.Topology, error) {
				c, err := registry.New(*url)
				if err != nil {
					return nil, err
				}
				clicks, err := serde.AvroRegistryTyped(c, "", "", Mapping)
				if err != nil {
					return nil, err
				}
				return AvroCount(cfg, clicks)
			}
		},
	})
}
