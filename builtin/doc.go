// Package builtin holds the topologies the processor binary ships: small,
// stable jobs for demos, tests, benchmarks and cross-checks by outside
// tools. Their input and output formats are contracts; change them only
// with a new name.
//
//   - Passthrough: input to output unchanged (a baseline).
//   - KeyCount: the running count per record key (state, changelog).
//   - WindowCount: JSON events counted per key field in tumbling
//     event-time windows, re-keyed through a repartition topic (the demo's
//     job; see its doc for the exact contract).
//   - ClickCount: the running count of JSON clicks per user.
//
// # Concurrency
//
// The functions build new topologies; nothing is shared.
package builtin
