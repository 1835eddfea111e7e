package app

import (
	"flag"
	"io"
	"testing"

	"github.com/weirstream/weir/engine"
	"github.com/weirstream/weir/internal/cliutil"
)

// TestAllowStateLossFlag: the flag and its environment variable reach
// engine.Config, off by default.
func TestAllowStateLossFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  string // WEIR_ALLOW_STATE_LOSS, "" unset
		args []string
		want bool
	}{
		{name: "default", want: false},
		{name: "flag", args: []string{"--allow-state-loss"}, want: true},
		{name: "env", env: "true", want: true},
		{name: "flag overrides env", env: "true", args: []string{"--allow-state-loss=false"}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("WEIR_ALLOW_STATE_LOSS", tc.env)
			}
			fs := flag.NewFlagSet("run", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg := engine.DefaultConfig()
			cliutil.EngineFlags(fs, &cfg)
			if err := cliutil.Parse(fs, tc.args); err != nil {
				t.Fatalf("cliutil.Parse(%q): %v", tc.args, err)
			}
			if cfg.AllowStateLoss != tc.want {
				t.Errorf("AllowStateLoss = %v, want %v", cfg.AllowStateLoss, tc.want)
			}
		})
	}
}
