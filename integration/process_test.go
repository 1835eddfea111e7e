package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirstream/weir/engine"
)

var processor struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// TestMain removes the processor binary built by processorBinary.
func TestMain(m *testing.M) {
	code := m.Run()
	if processor.dir != "" {
		os.RemoveAll(processor.dir)
	}
	os.Exit(code)
}

// processorBinary builds cmd/processor once per test run.
func processorBinary(t *testing.T) string {
	t.Helper()
	processor.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			processor.err = fmt.Errorf("go tool not found: %w", err)
			return
		}
		if processor.dir, processor.err = os.MkdirTemp("", "weir-integration-"); processor.err != nil {
			return
		}
		processor.path = filepath.Join(processor.dir, "processor")
		cmd := exec.Command(goBin, "build", "-o", processor.path, "github.com/weirstream/weir/cmd/processor")
		if out, err := cmd.CombinedOutput(); err != nil {
			processor.err = fmt.Errorf("go build ./cmd/processor: %w\n%s", err, out)
		}
	})
	if processor.err != nil {
		t.Fatal(processor.err)
	}
	return processor.path
}

// proc is a child process whose output is kept for the test.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{}
	err    error     // valid once done is closed
	exited time.Time // valid once done is closed
	// signalled is when the test sent SIGTERM (zero if it did not): an
	// exit without it is unexpected.
	signalled time.Time
}

// startProc starts the processor binary with args. It is killed at cleanup
// if still running, and its output is logged if the test failed.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(processorBinary(t), args...)
	p.cmd.Dir = t.TempDir() // relative paths (state) stay the process's own
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		defer close(p.done)
		p.err = p.cmd.Wait()
		p.exited = time.Now()
	}()
	t.Cleanup(func() {
		how := "killed at cleanup"
		select {
		case <-p.done:
			how = fmt.Sprintf("exited at %s (%v)", p.exited.Format("15:04:05.000"), p.cmd.ProcessState)
			if p.signalled.IsZero() {
				how += " without a signal from the test"
			}
		default:
			p.cmd.Process.Kill() //nolint:errcheck // it may have just exited
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s (%v), pid %d, %s; stdout:\n%s\nstderr:\n%s", name, p.cmd.Args[1:], p.cmd.Process.Pid, how, p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

// match waits until re matches the process's stdout or stderr and returns
// the first submatch.
func (p *proc) match(t *testing.T, re *regexp.Regexp, stderr bool) string {
	t.Helper()
	var got string
	waitFor(t, setupTimeout, fmt.Sprintf("%s to print %s", p.name, re), func() bool {
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before printing %s", p.name, p.err, re)
		default:
		}
		buf := &p.stdout
		if stderr {
			buf = &p.stderr
		}
		if m := re.FindStringSubmatch(buf.String()); m != nil {
			got = m[1]
			return true
		}
		return false
	})
	return got
}

// alive fails the test if the process has exited.
func (p *proc) alive(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("%s exited unexpectedly at %s: %v", p.name, p.exited.Format("15:04:05.000"), p.cmd.ProcessState)
	default:
	}
}

// terminate sends SIGTERM and waits for the process to exit; it must exit 0.
func (p *proc) terminate(t *testing.T) {
	t.Helper()
	p.signalled = time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		t.Fatalf("%s did not exit within %v of SIGTERM", p.name, stopTimeout)
	}
	if p.err != nil {
		t.Fatalf("%s after SIGTERM: %v (exit code %d), want exit 0", p.name, p.err, p.cmd.ProcessState.ExitCode())
	}
}

var (
	brokerAddrRE = regexp.MustCompile(`dev broker listening on (\S+)`)
	httpAddrRE   = regexp.MustCompile(`msg="http server listening".* addr=http://(\S+)`)
)

// tasksOf reads the /api/tasks of the processor serving HTTP at addr; nil
// if it cannot be reached.
func tasksOf(addr string) []string {
	resp, err := httpClient.Get("http://" + addr + "/api/tasks")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	var ts []engine.TaskInfo
	if json.Unmarshal(body, &ts) != nil {
		return nil
	}
	return taskIDs(ts)
}

// TestProcessesKeyCount runs the processor binary: a dev broker process and
// two key-count processes in one group. They split the 8 tasks and count
// exactly. Then one gets SIGTERM, exits 0, and the other takes every task
// over and goes on counting from where the group left off.
func TestProcessesKeyCount(t *testing.T) {
	t.Parallel()
	errs := capErrors(t)
	const (
		in, out = "input", "key-counts"
		app     = "proc-key-count"
		nKeys   = 50
	)
	broker := startProc(t, "dev-broker", "dev-broker", "--listen", "127.0.0.1:0")
	addr := broker.match(t, brokerAddrRE, false)
	c := connect(t, addr)
	c.createTopic(in, 8)

	run := func(name string) (*proc, string) {
		p := startProc(t, name, "run", "--brokers", addr, "--app-id", app, "--topology", "key-count",
			"--input", in, "--output", out, "--http", "127.0.0.1:0",
			"--session-timeout", sessionTimeout.String(), "--state-dir", t.TempDir())
		return p, p.match(t, httpAddrRE, true)
	}
	a, aHTTP := run("run-a")
	b, bHTTP := run("run-b")
	want8 := allTasks(0, 8)
	waitFor(t, groupTimeout, "both processes splitting the 8 tasks", func() bool {
		a.alive(t)
		b.alive(t)
		ta, tb := tasksOf(aHTTP), tasksOf(bHTTP)
		return len(ta) > 0 && len(tb) > 0 && partitionOf(want8, ta, tb)
	})
	t.Logf("split: a=%v b=%v", tasksOf(aHTTP), tasksOf(bHTTP))

	perKey := make(map[string]int)
	total := 0
	produce := func(n int) {
		recs := make([]*kgo.Record, 0, n)
		for i := range n {
			k := fmt.Sprintf("key-%02d", (i*7)%nKeys)
			perKey[k]++
			recs = append(recs, &kgo.Record{Topic: in, Key: []byte(k), Value: []byte(strconv.Itoa(i))})
		}
		c.produce(recs)
		total += n
	}
	// check reads the whole output: each key's counts are 1..N in order,
	// N being the records of the key so far, in its murmur2 partition.
	check := func(phase string, live ...*proc) {
		t.Helper()
		for _, p := range live {
			p.alive(t)
		}
		got := c.readOutput(app, []string{in}, out, total)
		outParts := c.partitions(out)
		next := make(map[string]int)
		for _, rec := range got {
			k := string(rec.Key)
			next[k]++
			if string(rec.Value) != strconv.Itoa(next[k]) {
				errs.Errorf("%s: key %q: count %s at %s[%d]@%d, want %d", phase, k, rec.Value, out, rec.Partition, rec.Offset, next[k])
				next[k], _ = strconv.Atoi(string(rec.Value))
			}
			if p := murmur2(out, rec.Key, outParts); rec.Partition != p {
				errs.Errorf("%s: key %q in %s[%d], murmur2 picks %d", phase, k, out, rec.Partition, p)
			}
		}
		for k, n := range perKey {
			if next[k] != n {
				errs.Errorf("%s: key %q: final count %d, want %d", phase, k, next[k], n)
			}
		}
	}
	produce(1000)
	check("two processes", a, b, broker)

	a.terminate(t)
	waitFor(t, groupTimeout, "the remaining process to own all 8 tasks", func() bool {
		b.alive(t)
		return slices.Equal(tasksOf(bHTTP), want8)
	})
	produce(1000)
	check("after SIGTERM of one", b, broker)

	b.terminate(t)
	broker.terminate(t)
}
