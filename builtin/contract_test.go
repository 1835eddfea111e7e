package builtin_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/weirstream/weir/builtin"
	"github.com/weirstream/weir/serde"
	"github.com/weirstream/weir/topology"
	"github.com/weirstream/weir/topologytest"
)

// The built-ins' input contracts (see each one's doc): every record they do
// not define goes to the dead-letter topic with an error header saying why,
// and is counted nowhere. Each case is one bad record; the good records
// around them are counted exactly.

const base = int64(1_700_000_000_000) // a multiple of 10s

type badInput struct {
	name      string
	key       []byte
	value     string
	errSubstr string // in the dead letter's error header
}

// driver runs top on one partition (so one task sees every record).
func driver(t *testing.T, top *topology.Topology, app string) *topologytest.Driver {
	t.Helper()
	d, err := topologytest.New(top, topologytest.AppID(app), topologytest.Partitions(1), topologytest.IdleTimeout(0))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pipeBad pipes every bad input and checks each reached the dead-letter
// topic, in order, with its reason.
func pipeBad(t *testing.T, d *topologytest.Driver, input string, bad []badInput) {
	t.Helper()
	for _, b := range bad {
		if err := d.Pipe(input, 0, b.key, []byte(b.value), base); err != nil {
			t.Fatalf("%s: Pipe: %v", b.name, err)
		}
	}
	dlq := d.DLQ()
	if len(dlq) != len(bad) {
		var got []string
		for _, r := range dlq {
			got = append(got, fmt.Sprintf("%.80q", r.Value))
		}
		t.Fatalf("%d dead letters, want %d (one per bad input): %s", len(dlq), len(bad), strings.Join(got, " "))
	}
	for i, b := range bad {
		r := dlq[i]
		if string(r.Value) != b.value {
			t.Errorf("%s: dead letter %d is %.80q, want %.80q", b.name, i, r.Value, b.value)
		}
		e, _ := r.Header(topologytest.HeaderError)
		if !strings.Contains(e, b.errSubstr) {
			t.Errorf("%s: error header %q, want it to contain %q", b.name, e, b.errSubstr)
		}
		if len(e) > 512 {
			t.Errorf("%s: error header of %d bytes quotes too much input: %.100q...", b.name, len(e), e)
		}
	}
}

var huge = strings.Repeat("x", 100_000)

func TestWindowCountInputContract(t *testing.T) {
	top, err := builtin.WindowCount(builtin.DefaultWindowCount())
	if err != nil {
		t.Fatal(err)
	}
	d := driver(t, top, "wc")
	in := func(v string) {
		t.Helper()
		if err := d.Pipe("clicks", 0, nil, []byte(v), base); err != nil {
			t.Fatal(err)
		}
	}
	// Defined: the key field a non-empty string or a number, "ts" an
	// integer; other fields and the record key are ignored.
	in(`{"user":"u1","ts":1700000000001}`)
	in(`{"user":"u1","page":"/a","ts":1700000000002,"extra":[1,{}]}`)
	in(`{"user":7,"ts":1700000000003}`)
	in(`{"user":"ü\u00fc","ts":1700000000004}`)
	in(" {\n \"user\" :\t\"u1\" , \"ts\" : 1700000000005 }\n")
	pipeBad(t, d, "clicks", []badInput{
		{"null key field", nil, `{"user":null,"ts":1700000000001}`, `field "user" is null, want a non-empty string or a number`},
		{"boolean key field", nil, `{"user":true,"ts":1700000000001}`, `field "user" is true, want a non-empty string or a number`},
		{"object key field", nil, `{"user":{"id":"u1"},"ts":1700000000001}`, `field "user" is {"id":"u1"}, want`},
		{"array key field", nil, `{"user":["u1"],"ts":1700000000001}`, `field "user" is ["u1"], want`},
		{"empty key field", nil, `{"user":"","ts":1700000000001}`, `field "user" is "", want a non-empty string or a number`},
		{"missing key field", nil, `{"ts":1700000000001}`, `no "user" field`},
		{"invalid UTF-8 a", nil, "{\"user\":\"u\xff\",\"ts\":1700000000001}", "not valid UTF-8"},
		{"invalid UTF-8 b", nil, "{\"user\":\"u\xfe\",\"ts\":1700000000001}", "not valid UTF-8"},
		{"null ts, spaced", nil, `{ "user" : "u1" , "ts" : null }`, `"ts" is null, want epoch milliseconds`},
		{"null key field, spaced", nil, `{ "user" :  null , "ts" : 1 }`, `field "user" is null, want`},
		{"null ts", nil, `{"user":"u1","ts":null}`, `"ts" is null, want epoch milliseconds`},
		{"string ts", nil, `{"user":"u1","ts":"1700000000001"}`, `"ts" is "1700000000001", want epoch milliseconds`},
		{"fractional ts", nil, `{"user":"u1","ts":1700000000001.5}`, `"ts" is 1700000000001.5, want epoch milliseconds`},
		{"missing ts", nil, `{"user":"u1"}`, `no "ts" field`},
		{"null value", nil, `null`, `null, want a JSON object`},
		{"array value", nil, `[1]`, `value is [1], want a JSON object`},
		{"huge key field", nil, `{"user":{"a":"` + huge + `"},"ts":1}`, `field "user" is {"a":"` + strings.Repeat("x", 58) + `… (100008 bytes), want`},
		{"huge garbage", nil, `{"page":"` + huge, `unexpected end of JSON input`},
	})
	// Close the window: the next one's record moves the watermark past it.
	in(`{"user":"u9","ts":1700000020000}`)
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	recs, err := topologytest.OutputOf(d, "clicks-per-window", serde.String(), serde.JSON[builtin.WindowCountResult]())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s@%d=%d", r.Key, r.Value.WindowStart-base, r.Value.Count))
	}
	slices.Sort(got)
	if want := []string{"7@0=1", "u1@0=3", "üü@0=1"}; !slices.Equal(got, want) {
		t.Errorf("windows %q, want %q", got, want)
	}
}

func TestClickCountInputContract(t *testing.T) {
	d := driver(t, builtin.ClickCount("clicks", "counts"), "cc")
	in := func(v string) {
		t.Helper()
		if err := d.Pipe("clicks", 0, nil, []byte(v), base); err != nil {
			t.Fatal(err)
		}
	}
	// Defined: "user" a non-empty string, "ts" an integer, "page" an
	// optional string; other fields and the record key are ignored.
	in(`{"user":"u1","page":"/a","ts":1700000000001}`)
	in(`{"user":"u1","ts":1700000000002,"page":null,"extra":true}`)
	in(`{"user":"u2","ts":1700000000003}`)
	pipeBad(t, d, "clicks", []badInput{
		{"null user", nil, `{"user":null,"ts":1700000000001}`, `required field "user" is null`},
		{"missing user", nil, `{"ts":1700000000001}`, `required field "user" is missing`},
		{"boolean user", nil, `{"user":true,"ts":1700000000001}`, `cannot unmarshal bool`},
		{"number user", nil, `{"user":7,"ts":1700000000001}`, `cannot unmarshal number`},
		{"empty user", nil, `{"user":"","ts":1700000000001}`, `click has no user`},
		{"invalid UTF-8 a", nil, "{\"user\":\"u\xff\",\"ts\":1700000000001}", "not valid UTF-8"},
		{"invalid UTF-8 b", nil, "{\"user\":\"u\xfe\",\"ts\":1700000000001}", "not valid UTF-8"},
		{"null ts, spaced", nil, `{ "user" : "u1" , "ts" : null }`, `required field "ts" is null`},
		{"null user, spaced", nil, `{ "user" :  null , "ts" : 1 }`, `required field "user" is null`},
		{"null ts", nil, `{"user":"u1","ts":null}`, `required field "ts" is null`},
		{"missing ts", nil, `{"user":"u1"}`, `required field "ts" is missing`},
		{"string ts", nil, `{"user":"u1","ts":"1"}`, `cannot unmarshal string`},
		{"null value", nil, `null`, `null, want an object`},
		{"huge garbage", nil, `{"user":"` + huge, `unexpected end of JSON input`},
	})
	recs, err := topologytest.OutputOf(d, "counts", serde.String(), serde.JSON[builtin.UserCount]())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s=%d", r.Key, r.Value.Count))
	}
	if want := []string{"u1=1", "u1=2", "u2=1"}; !slices.Equal(got, want) {
		t.Errorf("counts %q, want %q", got, want)
	}
}

func TestKeyCountInputContract(t *testing.T) {
	d := driver(t, builtin.KeyCount("in", "counts"), "kc")
	in := func(key []byte, v string) {
		t.Helper()
		if err := d.Pipe("in", 0, key, []byte(v), base); err != nil {
			t.Fatal(err)
		}
	}
	// Defined: any non-null key (its bytes, UTF-8 or not, empty or not);
	// the value is ignored.
	in([]byte("k"), "a")
	in([]byte{}, "b")
	in([]byte{0xff}, "c")
	in([]byte{0xfe}, "d")
	in([]byte("k"), "")
	pipeBad(t, d, "in", []badInput{
		{"null key", nil, "e", "record has no key"},
	})
	recs, err := topologytest.OutputOf(d, "counts", serde.Bytes(), serde.String())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%q=%s", r.Key, r.Value))
	}
	if want := []string{`"k"=1`, `""=1`, `"\xff"=1`, `"\xfe"=1`, `"k"=2`}; !slices.Equal(got, want) {
		t.Errorf("counts %q, want %q", got, want)
	}
}
