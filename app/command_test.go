package app_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/weirstream/weir/app"
)

// TestExtraCommand: a Command gets its arguments and Run's writers, is
// listed in the usage, and its error picks the exit code.
func TestExtraCommand(t *testing.T) {
	echo := app.Command{
		Name: "echo",
		Help: "print the arguments",
		Run: func(_ context.Context, args []string, stdout, _ io.Writer) error {
			switch {
			case len(args) == 1 && args[0] == "-h":
				return flag.ErrHelp
			case len(args) == 1 && args[0] == "bad":
				return app.UsageError(errors.New("bad usage"))
			case len(args) == 1 && args[0] == "fail":
				return errors.New("it failed")
			}
			_, err := io.WriteString(stdout, strings.Join(args, " ")+"\n")
			return err
		},
	}
	cfg := app.Config{Commands: []app.Command{echo}}
	for _, tc := range []struct {
		args             []string
		code             int
		stdout, inStderr string
	}{
		{[]string{"echo", "a", "b"}, 0, "a b\n", ""},
		{[]string{"echo", "-h"}, 0, "", ""},
		{[]string{"echo", "bad"}, 2, "", "processor echo: bad usage\n"},
		{[]string{"echo", "fail"}, 1, "", "processor echo: it failed\n"},
		{[]string{"help"}, 0, "", "  healthcheck GET a processor's /healthz: exit 0 on HTTP 200, 1 otherwise (container health checks)\n  echo        print the arguments\n\nRun 'processor COMMAND -h'"},
	} {
		var out, errb bytes.Buffer
		code := app.RunWith(context.Background(), tc.args, &out, &errb, cfg)
		if code != tc.code || out.String() != tc.stdout || !strings.Contains(errb.String(), tc.inStderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr containing %q",
				tc.args, code, out.String(), errb.String(), tc.code, tc.stdout, tc.inStderr)
		}
	}
}

// TestExtraCommandClash: a Command named like a built-in one, twice, or
// not as a command word, or without Run, is refused before anything runs.
func TestExtraCommandClash(t *testing.T) {
	ran := false
	cmd := func(name string) app.Command {
		return app.Command{Name: name, Run: func(context.Context, []string, io.Writer, io.Writer) error { ran = true; return nil }}
	}
	for _, cmds := range [][]app.Command{
		{cmd("run")},
		{cmd("help")},
		{cmd("--help")},
		{cmd("")},
		{cmd("x"), cmd("x")},
		{{Name: "norun"}},
	} {
		var errb bytes.Buffer
		code := app.RunWith(context.Background(), []string{cmds[0].Name}, io.Discard, &errb, app.Config{Commands: cmds})
		if code != 2 || ran || !strings.Contains(errb.String(), "processor: command \""+cmds[len(cmds)-1].Name+"\"") {
			t.Errorf("%s: exit %d, ran %v, stderr %q; want exit 2 and a message naming it", cmds[0].Name, code, ran, errb.String())
		}
	}
}

// TestUserUsageHasNoBench: a user's binary does not offer bench or gen.
func TestUserUsageHasNoBench(t *testing.T) {
	for _, name := range []string{"bench", "gen"} {
		var errb bytes.Buffer
		if code := app.Run(context.Background(), []string{name}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
			t.Errorf("%s: exit %d, %q; want exit 2, unknown command", name, code, errb.String())
		}
		if strings.Contains(errb.String(), "\n  "+name+" ") {
			t.Errorf("%s is listed in the usage: %q", name, errb.String())
		}
	}
}
