package blockio

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/measure"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

func TestLayerFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		order  []int // block order of the writes
		commit bool
	}{
		{name: "in order", order: []int{0, 1, 2, 3}, commit: true},
		{name: "out of order", order: []int{3, 0, 2, 1}, commit: true},
		{name: "aborted", order: []int{0, 1}, commit: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			const block = 4096
			want := make([]byte, 4*block)
			for i := range want {
				want[i] = byte(i * 7)
			}
			// A leftover partial file from a crashed run is replaced.
			require.NoError(t, os.WriteFile(filepath.Join(dir, sdr.LayerFileName(2)+".partial"), []byte("junk"), 0o644))
			l, err := CreateLayerFile(dir, 2, uint64(len(want)))
			require.NoError(t, err)
			var acks atomic.Int32
			for _, b := range tc.order {
				require.NoError(t, l.WriteAsync(want[b*block:(b+1)*block], int64(b*block), func() { acks.Add(1) }))
			}
			require.ErrorContains(t, l.WriteAsync(want[:block], int64(len(want)), nil), "outside")
			final := filepath.Join(dir, sdr.LayerFileName(2))
			require.Equal(t, final, l.Path())
			if !tc.commit {
				l.Abort()
				entries, err := os.ReadDir(dir)
				require.NoError(t, err)
				require.Empty(t, entries)
				return
			}
			require.NoError(t, l.Commit(nil))
			require.EqualValues(t, len(tc.order), acks.Load())
			got, err := os.ReadFile(final)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got))
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "no partial file left")
		})
	}
}

func TestCreateLayerFileErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err := CreateLayerFile(filepath.Join(file, "sector"), 1, 4096)
	require.ErrorContains(t, err, "a-file")
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.json")
	require.NoError(t, CheckWritable(path))
	require.NoError(t, WriteFileAtomic(path, []byte("one")))
	require.NoError(t, WriteFileAtomic(path, []byte("two")))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "two", string(got))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary or probe files left")

	require.ErrorContains(t, CheckWritable(dir), "is a directory")
	require.ErrorContains(t, CheckWritable(filepath.Join(path, "x")), "is not a directory")
	require.ErrorContains(t, CheckWritable(filepath.Join(dir, "missing", "x")), "missing")
}

// TestLayerFileDropAfterWrite writes blocks smaller and larger than the
// drop chunk: every byte lands, and by each ack nothing of the block is
// left in the page cache, so the spill tier can free its DRAM copy.
func TestLayerFileDropAfterWrite(t *testing.T) {
	for _, block := range []int{4096, dropChunk, 3*dropChunk + 4096} {
		t.Run(fmt.Sprint(block), func(t *testing.T) {
			dir := t.TempDir()
			const blocks = 3
			l, err := CreateLayerFile(dir, 1, uint64(blocks*block))
			require.NoError(t, err)
			want := make([]byte, blocks*block)
			for i := range want {
				want[i] = byte(i * 7)
			}
			for b := range blocks {
				acked := make(chan struct{})
				require.NoError(t, l.WriteAsync(want[b*block:(b+1)*block], int64(b*block), func() { close(acked) }))
				<-acked
				cached, err := measure.PageCacheBytes(l.TempPath())
				require.NoError(t, err)
				require.Zero(t, cached, "block %d left in the page cache", b)
			}
			require.NoError(t, l.Commit(nil))
			got, err := os.ReadFile(l.Path())
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got))
		})
	}
}

// TestLayerFileLogAfter checks that a file told to log after an earlier
// commit writes its blocks meanwhile but logs none before that commit
// ends, and logs none at all if it fails.
func TestLayerFileLogAfter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		commitErr error
	}{
		{name: "commit succeeds"},
		{name: "commit fails", commitErr: fmt.Errorf("layer 1: EIO")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			const block = 4096
			want := bytes.Repeat([]byte{7}, 2*block)
			l, err := CreateLayerFile(dir, 2, uint64(len(want)))
			require.NoError(t, err)
			defer l.Close()
			waiting, release := make(chan struct{}), make(chan struct{})
			l.LogAfter(func() error {
				close(waiting)
				<-release
				return tc.commitErr
			})
			acked := make(chan struct{})
			require.NoError(t, l.WriteAsync(want[:block], 0, func() { close(acked) }))
			<-waiting
			// The block is on the device, not yet in the log.
			got := make([]byte, block)
			_, err = l.f.ReadAt(got, 0)
			require.NoError(t, err)
			require.Equal(t, want[:block], got)
			recs, err := readProgressLog(SectorDir(dir).ProgressLog(2), int64(len(want)))
			require.NoError(t, err)
			require.Empty(t, recs, "logged before the layer before was committed")
			select {
			case <-acked:
				t.Fatal("acked before it was logged")
			default:
			}
			close(release)
			<-acked
			err = l.WriteAsync(want[block:], block, nil)
			l.drain()
			recs, rerr := readProgressLog(SectorDir(dir).ProgressLog(2), int64(len(want)))
			require.NoError(t, rerr)
			if tc.commitErr != nil {
				// The file failed: the next write says so.
				require.ErrorIs(t, err, ErrPreviousNotCommitted)
				require.ErrorContains(t, err, l.TempPath())
				require.Empty(t, recs)
				return
			}
			require.NoError(t, err)
			require.NoError(t, l.Err())
			require.Len(t, recs, 2)
		})
	}
}
