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
// # Input contracts
//
// Each built-in documents what input it defines, and refuses the rest
// with a decode or operator error, which the engine's error policy sends
// to the dead-letter topic by default: a record it cannot read exactly is
// never counted under a made-up key. In short: KeyCount needs a key (not
// null); WindowCount and ClickCount need a JSON object in valid UTF-8
// whose key field (user) is a non-empty string (WindowCount: or a number)
// and whose "ts" is an integer; null never stands for a value.
//
// # Concurrency
//
// The functions build new topologies; nothing is shared.
package builtin
