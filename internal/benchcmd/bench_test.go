package benchcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/app"
	"github.com/weirstream/weir/internal/cliutil"
	"github.com/weirstream/weir/kafkaio"
)

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	tops := append(app.Builtins(), Topologies()...)
	code := app.RunWith(context.Background(), args, &out, &errb, app.Config{Topologies: tops, Commands: Commands(tops)})
	return out.String(), errb.String(), code
}

func TestBenchEngineJSON(t *testing.T) {
	out, errOut, code := runCLI(t, "bench", "--mode", "engine", "--query", "q7", "--events", "20000", "--rate", "1000", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.Weir.Events != 20000 || rep.Weir.CPUSeconds <= 0 || rep.Weir.EventsPerCPUSecond <= 0 || rep.CeilingEngine == nil || rep.Ratio <= 0 {
		t.Errorf("report lacks figures: %s", out)
	}
	// 20 s of event time: windows [0,10) and [10,20) s.
	if n := rep.Output["nexmark-q7-out"]; n != 2 {
		t.Errorf("q7 wrote %d results, want 2: %s", n, out)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"bench", "--query", "q3"}, 1, "stream-table join"},
		{[]string{"bench", "--query", "q42"}, 2, "unknown query"},
		{[]string{"bench"}, 2, "--query is required"},
		{[]string{"bench", "--query", "q0", "--mode", "cloud"}, 2, "--mode"},
		{[]string{"gen", "--kind", "clicks", "--brokers", "x:1"}, 2, "--kind"},
	} {
		_, errOut, code := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, %q; want exit %d with %q", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}

// TestGenAndPassthrough writes Nexmark events with gen to a dev broker and
// drains them with the passthrough role (the kafka-mode ceiling), both
// guarantees.
func TestGenAndPassthrough(t *testing.T) {
	b, err := kafkaio.StartDevBroker(kafkaio.DevBrokerConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	out, errOut, code := runCLI(t, "gen", "--brokers", b.Addr(), "--topic", "nx", "--events", "3000", "--partitions", "3")
	if code != 0 || !strings.Contains(out, "3003 records") {
		t.Fatalf("gen: exit %d: %s %s", code, out, errOut)
	}
	for _, g := range []string{"at_least_once", "exactly_once"} {
		if err := cliutil.CreateTopic(context.Background(), b.Addr(), g+"-out", 3); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runCLI(t, "bench", "--role", "passthrough", "--brokers", b.Addr(), "--input", "nx",
			"--output", g+"-out", "--group", g, "--guarantee", g, "--expect", "3003")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", g, code, errOut)
		}
		var f figures
		if err := json.Unmarshal([]byte(out), &f); err != nil || f.Events != 3003 {
			t.Errorf("%s: %q (%v)", g, out, err)
		}
		if n := countRecords(t, b.Addr(), g+"-out"); n != 3003 {
			t.Errorf("%s: %d records in the output, want 3003", g, n)
		}
	}
}

func countRecords(t *testing.T, broker, topic string) int {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return n
		}
		n += len(f.Records())
		if n >= 3003 {
			// Wait briefly for anything beyond the expected count.
			c2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
			n += len(cl.PollFetches(c2).Records())
			cancel2()
			return n
		}
	}
}
