package topology_test

import (
	"testing"

	"github.com/weirstream/weir/topology"
)

func TestParseOrigin(t *testing.T) {
	for _, tc := range []struct {
		in        string
		topic     string
		partition int32
		offset    int64
		bad       bool
	}{
		{in: "clicks/2@17", topic: "clicks", partition: 2, offset: 17},
		{in: "a.b_c-d/0@0", topic: "a.b_c-d", partition: 0, offset: 0},
		{in: "t/2147483647@9223372036854775807", topic: "t", partition: 2147483647, offset: 9223372036854775807},
		{in: "", bad: true},
		{in: "clicks", bad: true},
		{in: "clicks/2", bad: true},
		{in: "clicks@17", bad: true},
		{in: "/2@17", bad: true},
		{in: "clicks/x@17", bad: true},
		{in: "clicks/2@", bad: true},
		{in: "clicks/2147483648@1", bad: true},
		{in: "@/", bad: true},
	} {
		topic, p, o, err := topology.ParseOrigin([]byte(tc.in))
		if tc.bad {
			if err == nil {
				t.Errorf("ParseOrigin(%q) = %q, %d, %d; want an error", tc.in, topic, p, o)
			}
			continue
		}
		if err != nil || topic != tc.topic || p != tc.partition || o != tc.offset {
			t.Errorf("ParseOrigin(%q) = %q, %d, %d, %v; want %q, %d, %d", tc.in, topic, p, o, err, tc.topic, tc.partition, tc.offset)
		}
	}
}
