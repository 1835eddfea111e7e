package topology

import "github.com/twmb/franz-go/pkg/kgo"

// Record is one typed record flowing between operators.
type Record[K, V any] struct {
	Key   K
	Value V
	// Timestamp is the record's event time in epoch milliseconds.
	Timestamp int64
	// Headers travel with the record to sinks. Operators may append;
	// they must not modify the headers of a record they did not create.
	Headers []kgo.RecordHeader
}

// TimestampExtractor returns the event time (epoch ms) of a decoded record.
// The default uses the Kafka record timestamp.
type TimestampExtractor[K, V any] func(key K, value V, kafkaTimestamp int64) (int64, error)
