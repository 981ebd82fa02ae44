package labeler

import (
	"context"
	"fmt"

	"github.com/pc1-tiered/pc1-tiered/blockio"
)

// lockSectors makes sure every sector directory is locked for the run:
// by the caller (Config.Locks), or here, all of them before any is
// touched. A sector another seal holds stops the run with a
// *blockio.LockedError naming its directory, unless LockOptions.Wait.
// The returned func releases the locks taken here.
func (c *Config) lockSectors(ctx context.Context) (func(), error) {
	var missing []string
	for i, s := range c.Sectors {
		if c.Locks == nil {
			missing = append(missing, s.Dir)
			continue
		}
		if !c.Locks.Holds(s.Dir) {
			return nil, fmt.Errorf("sector %d (%s): Config.Locks does not hold its directory's lock", i, s.Dir)
		}
	}
	if len(missing) == 0 {
		return func() {}, nil
	}
	locks, err := blockio.LockSectors(ctx, missing, c.LockOptions)
	if err != nil {
		return nil, err
	}
	return locks.Unlock, nil
}
