package engine

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Brokers, c.AppID = []string{"127.0.0.1:9092"}, "app"
		return c
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("the defaults with brokers and an app id: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want []string
	}{
		{"nothing set", func(c *Config) { *c = DefaultConfig() }, []string{"no brokers", "no application id"}},
		{"bad broker", func(c *Config) { c.Brokers = []string{"localhost"} }, []string{`broker "localhost": want host:port`}},
		{"guarantee", func(c *Config) { c.Guarantee = "maybe_once" }, []string{`guarantee "maybe_once": want "exactly_once" or "at_least_once"`}},
		{"policy", func(c *Config) { c.OnError = "ignore" }, []string{`on-error "ignore": want dlq, skip or fail`}},
		{"long exactly-once interval", func(c *Config) { c.CommitInterval = 5 * time.Minute }, []string{"exactly-once wants at most 3m"}},
		{"long at-least-once interval is fine", func(c *Config) { c.Guarantee, c.CommitInterval = AtLeastOnce, time.Hour }, nil},
		{"several at once", func(c *Config) {
			c.SessionTimeout, c.MaxPollRecords, c.HTTPAddr, c.StateDir = time.Millisecond, 0, "8080", ""
		}, []string{"session timeout", "max poll records", `http address "8080"`, "no state directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mod(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%v", n, len(tc.want), err)
			}
		})
	}
}
