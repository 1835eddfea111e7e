package changelog

import (
	"log/slog"
	"os"
	"testing"
)

// TestMain keeps ReadRange's progress lines (slog.Default) out of test
// output.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
