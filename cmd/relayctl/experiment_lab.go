package main

import (
	"context"
	"fmt"
)

// runLab runs the lab scenarios.
func (f *experimentFlags) runLab(ctx context.Context, g globals) error {
	return fmt.Errorf("lab mode not wired yet")
}
