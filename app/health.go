package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/weirstream/weir/internal/cliutil"
)

// healthcheck is 'processor healthcheck': one GET of a processor's
// /healthz, for container health checks (a FROM scratch image has no curl).
// It succeeds (exit 0) on HTTP 200 and fails (exit 1) on anything else,
// saying what it got.
func (c *cli) healthcheck(ctx context.Context, args []string) error {
	fs := c.flagSet("healthcheck")
	url := fs.String("url", "http://127.0.0.1:8080/healthz", "the URL to check: a processor's /healthz (or /readyz)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := cliutil.Parse(fs, args); err != nil {
		return err
	}
	if *timeout <= 0 {
		return cliutil.UsageError{Err: fmt.Errorf("--timeout %v: want more than 0", *timeout)}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return cliutil.UsageError{Err: fmt.Errorf("--url %q: %w", *url, err)}
	}
	// No proxy: the check is about this container's own server, and a
	// proxy from the environment would check something else.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		var ue *neturl.Error // "Get "URL": ..." would repeat the URL
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("unhealthy: GET %s: %w", *url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: GET %s: %s: %q", *url, resp.Status, body)
	}
	fmt.Fprintf(c.stdout, "healthy: GET %s: %s\n", *url, resp.Status)
	return nil
}
