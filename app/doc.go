// Package app is weir's command line as a library: a user's binary gets the
// same CLI as weir's own processor with one call, and writes only its
// topologies:
//
//	func main() {
//		app.Main(app.Topology{
//			Name: "fraud",
//			Help: "flag cards with more than 5 payments a minute",
//			Define: func(fs *flag.FlagSet) func() (*topology.Topology, error) {
//				limit := fs.Int("limit", 5, "payments per minute")
//				return func() (*topology.Topology, error) { return fraud(*limit), nil }
//			},
//		})
//	}
//
// # Commands
//
//	demo        an embedded dev broker, a click generator and window-count, printed live
//	run         run a topology as one member of its application's group
//	describe    print a topology (text, dot or json)
//	dev-broker  run a Kafka-protocol development broker
//	topologies  list the topologies of the binary
//	healthcheck GET a processor's /healthz (container health checks)
//
// A binary adds commands of its own with MainWith and a Command; RunWith
// calls a Command's Run on the goroutine that called MainWith or RunWith.
// weir's processor binary adds bench and gen (Nexmark benchmarks and
// events) this way, so a binary built with Main links neither them nor the
// Nexmark package.
//
// Every flag can also be set with WEIR_<FLAG> environment variables
// (WEIR_BROKERS, WEIR_APP_ID, ...); flags win. Exit codes: 0 success, 1
// failure, 2 bad usage.
package app
