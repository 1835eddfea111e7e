package app

import (
	"os/exec"
	"strings"
	"testing"
)

// TestUserBinaryDeps: a user's binary built with app.Main links neither the
// Nexmark package nor the bench and gen commands; only weir's own processor
// does.
func TestUserBinaryDeps(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list a binary's dependencies: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "./testdata/minimal")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps: %v: %s", err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/weirstream/weir/app/testdata/minimal" {
		t.Fatalf("go list -deps did not list the test binary: %q", deps)
	}
	linked := false
	for _, d := range deps {
		if d == "github.com/weirstream/weir/app" {
			linked = true
		}
		if strings.Contains(d, "nexmark") || strings.Contains(d, "benchcmd") {
			t.Errorf("a binary built with app.Main links %s", d)
		}
	}
	if !linked {
		t.Errorf("the test binary does not link the app package: %q", deps)
	}
}
