package app

import (
	"context"
	"errors"
)

// gen and bench are being written (issue 7); until then they say so.
func (c *cli) gen(context.Context, []string) error {
	return errors.New("gen: not available in this build yet")
}

func (c *cli) bench(context.Context, []string) error {
	return errors.New("bench: not available in this build yet")
}
