//go:build weirtesthooks

package engine

import (
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

var commits atomic.Int64

// afterCommit kills the process with SIGKILL after the N-th committed
// checkpoint and before its state reaches Badger, when the environment
// sets WEIR_TEST_CRASH_AFTER_COMMIT=N. Built only with -tags
// weirtesthooks, for the crash tests: the restarted process must replay
// the changelog tail.
func afterCommit() {
	n, err := strconv.ParseInt(os.Getenv("WEIR_TEST_CRASH_AFTER_COMMIT"), 10, 64)
	if err != nil || n <= 0 {
		return
	}
	if commits.Add(1) == n {
		syscall.Kill(os.Getpid(), syscall.SIGKILL) //nolint:errcheck
		select {}
	}
}
