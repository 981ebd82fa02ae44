package blockio

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// TestCommitChecksItsOwnFile: a layer whose partial file was replaced,
// removed, truncated or written into by someone else after this process
// wrote it is not committed: an error naming the file, no checksum on
// record (beforeRename is not called), no final name.
func TestCommitChecksItsOwnFile(t *testing.T) {
	const block = 4096
	data := make([]byte, 4*block)
	for i := range data {
		data[i] = byte(i * 13)
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, tmp string)
		err    string
	}{
		{name: "replaced by another file", tamper: func(t *testing.T, tmp string) {
			other := tmp + ".other"
			require.NoError(t, os.WriteFile(other, data, 0o644))
			require.NoError(t, os.Rename(other, tmp))
		}, err: "is no longer the file this process wrote"},
		{name: "removed", tamper: func(t *testing.T, tmp string) {
			require.NoError(t, os.Remove(tmp))
		}, err: "no longer has that name"},
		{name: "truncated", tamper: func(t *testing.T, tmp string) {
			require.NoError(t, os.Truncate(tmp, block))
		}, err: "is 4096 bytes, this process wrote 16384"},
		{name: "written into", tamper: func(t *testing.T, tmp string) {
			f, err := os.OpenFile(tmp, os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.WriteAt([]byte{1, 2, 3}, 2*block+5)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}, err: "not the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := CreateLayerFile(dir, 1, uint64(len(data)))
			require.NoError(t, err)
			var acked sync.WaitGroup
			for b := range 4 {
				acked.Add(1)
				require.NoError(t, l.WriteAsync(data[b*block:(b+1)*block], int64(b*block), acked.Done))
			}
			acked.Wait()
			tc.tamper(t, l.TempPath())
			recorded := false
			err = l.Commit(func(uint32) error { recorded = true; return nil })
			require.ErrorContains(t, err, tc.err)
			require.ErrorContains(t, err, filepath.Join(dir, sdr.LayerFileName(1)))
			require.False(t, recorded, "no checksum recorded")
			require.NoFileExists(t, l.Path())
		})
	}
}
