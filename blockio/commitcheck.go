package blockio

import (
	"fmt"
	"os"
)

// A layer's commit names bytes: its checksum goes on record and its file
// gets the name PC2 and verify trust. So before that, the commit checks
// that the file under the partial name is still the one this LayerFile
// wrote (the same inode as its open descriptor: nobody renamed another
// file over it or removed it) and that it holds what was written (its
// CRC-32C, read back from the device, equals the one computed from the
// blocks as they were written: nobody truncated it or wrote into it).
// The sector lock keeps other seals out; this is what makes a broken
// lock, a foreign tool or a bad device an error instead of a success.
// The read-back costs one sequential read of the layer per layer, next to
// the hours of hashing it guards.

// checkOwnFile fails unless l's partial name still names l's file and
// the file's contents have the checksum of what l wrote (readBack: unless
// that checksum was just read from the file, out-of-order writes). It
// returns the file's identity, to check the final name against after the
// rename.
func (l *LayerFile) checkOwnFile(readBack bool) (os.FileInfo, error) {
	own, err := l.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checking %s before commit: %w", l.tmp, err)
	}
	named, err := os.Stat(l.tmp)
	if err != nil {
		return nil, fmt.Errorf("checking %s before commit: the file this process wrote no longer has that name: %w", l.tmp, err)
	}
	if !os.SameFile(own, named) {
		return nil, fmt.Errorf("%s is no longer the file this process wrote (another process replaced it): not committing it", l.tmp)
	}
	if named.Size() != l.size {
		return nil, fmt.Errorf("%s is %d bytes, this process wrote %d (another process truncated it?): not committing it", l.tmp, named.Size(), l.size)
	}
	if !readBack {
		return own, nil
	}
	sum, err := fileChecksum(l.f, l.size)
	if err != nil {
		return nil, err
	}
	if sum != l.sum {
		return nil, fmt.Errorf("%s holds crc32c %08x, not the %08x of the labels this process wrote (another process or the device changed it): not committing it", l.tmp, sum, l.sum)
	}
	return own, nil
}

// checkCommitted fails unless final names the file checkOwnFile saw.
func checkCommitted(final string, own os.FileInfo) error {
	st, err := os.Stat(final)
	if err != nil {
		return fmt.Errorf("checking %s after commit: %w", final, err)
	}
	if !os.SameFile(own, st) {
		return fmt.Errorf("%s is not the file this process committed (another process renamed one over it)", final)
	}
	return nil
}
