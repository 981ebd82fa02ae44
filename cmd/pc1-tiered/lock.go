package main

import (
	"errors"
	"fmt"

	"github.com/pc1-tiered/pc1-tiered/blockio"
)

// onWait prints, on one line of stderr, what a command waits for: a
// sector another seal holds (seal --wait) or a parent cache another
// process is generating.
func (e *env) onWait(msg string) {
	fmt.Fprintf(e.stderr, "pc1-tiered: %s\n", msg)
}

// lockHint adds to a refusal for a locked sector what the user can do.
func lockHint(err error) error {
	var locked *blockio.LockedError
	if errors.As(err, &locked) {
		return fmt.Errorf("%w; nothing was written: run again once it is done, or with --wait to wait for it", err)
	}
	return err
}
