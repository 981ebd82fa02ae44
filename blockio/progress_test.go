package blockio

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// TestResumeLayerFile interrupts a layer after some blocks, damages what
// it left in various ways, and checks how far resuming trusts it and that
// the resumed file commits with the right content and checksum.
func TestResumeLayerFile(t *testing.T) {
	const block, blocks = 4096, 4
	want := make([]byte, block*blocks)
	for i := range want {
		want[i] = byte(i*13 + i>>8)
	}
	for _, tc := range []struct {
		name    string
		written int // blocks written before the interruption
		damage  func(t *testing.T, tmp, log string)
		durable int // blocks resuming trusts
		align   int64
	}{
		{name: "nothing left", written: -1, durable: 0},
		{name: "clean stop", written: 3, durable: 3},
		{name: "clean stop, resumed with blocks twice as large", written: 3, durable: 2, align: 2 * block},
		{name: "all written, not committed", written: 4, durable: 4},
		{name: "torn last record", written: 3, durable: 2, damage: func(t *testing.T, _, log string) {
			st, err := os.Stat(log)
			require.NoError(t, err)
			require.NoError(t, os.Truncate(log, st.Size()-5))
		}},
		{name: "garbled record", written: 3, durable: 1, damage: func(t *testing.T, _, log string) {
			flipByte(t, progressRecordSize+3)(log)
		}},
		{name: "block altered after it was logged", written: 3, durable: 1, damage: func(t *testing.T, tmp, _ string) {
			flipByte(t, block+100)(tmp)
		}},
		{name: "partial file of the wrong size", written: 3, durable: 0, damage: func(t *testing.T, tmp, _ string) {
			require.NoError(t, os.Truncate(tmp, block))
		}},
		{name: "log lost", written: 3, durable: 0, damage: func(t *testing.T, _, log string) {
			require.NoError(t, os.Remove(log))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.written >= 0 {
				l, err := CreateLayerFile(dir, 3, uint64(len(want)))
				require.NoError(t, err)
				for b := range tc.written {
					require.NoError(t, l.WriteAsync(want[b*block:(b+1)*block], int64(b*block), nil))
				}
				l.Close()
				if tc.damage != nil {
					tc.damage(t, l.TempPath(), l.TempPath()+progressSuffix)
				}
			}
			l, durable, err := ResumeLayerFile(dir, 3, uint64(len(want)), tc.align)
			require.NoError(t, err)
			require.EqualValues(t, tc.durable*block, durable)
			if durable > 0 {
				got := make([]byte, durable)
				require.NoError(t, l.ReadAt(got, 0))
				require.Equal(t, want[:durable], got)
			}
			for b := tc.durable; b < blocks; b++ {
				require.NoError(t, l.WriteAsync(want[b*block:(b+1)*block], int64(b*block), nil))
			}
			var sum uint32
			require.NoError(t, l.Commit(func(crc uint32) error { sum = crc; return nil }))
			require.Equal(t, crc32.Checksum(want, crcTable()), sum)
			got, err := os.ReadFile(filepath.Join(dir, sdr.LayerFileName(3)))
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got))
			check, err := LayerChecksum(dir, 3, uint64(len(want)))
			require.NoError(t, err)
			require.Equal(t, sum, check)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "only the committed layer remains")
		})
	}
}

// TestCommitInterruptedBeforeRename: a crash after the layer's checksum
// was recorded but before the rename leaves a partial file whose log says
// it is complete, which resuming commits without rewriting anything.
func TestCommitInterruptedBeforeRename(t *testing.T) {
	dir := t.TempDir()
	want := bytes.Repeat([]byte{1, 2, 3}, 4096)
	l, err := CreateLayerFile(dir, 1, uint64(len(want)))
	require.NoError(t, err)
	require.NoError(t, l.WriteAsync(want, 0, nil))
	crash := errors.New("crash")
	require.ErrorIs(t, l.Commit(func(uint32) error { return crash }), crash)
	_, err = os.Stat(l.Path())
	require.True(t, os.IsNotExist(err), "not renamed")

	l, durable, err := ResumeLayerFile(dir, 1, uint64(len(want)), 0)
	require.NoError(t, err)
	require.EqualValues(t, len(want), durable)
	require.NoError(t, l.Commit(nil))
	got, err := os.ReadFile(l.Path())
	require.NoError(t, err)
	require.Equal(t, want, got)

	_, err = LayerChecksum(dir, 2, uint64(len(want)))
	require.ErrorContains(t, err, sdr.LayerFileName(2))
	_, err = LayerChecksum(dir, 1, uint64(len(want))+1)
	require.ErrorContains(t, err, "want")
}

func TestRemovePartialLayers(t *testing.T) {
	dir := t.TempDir()
	l, err := CreateLayerFile(dir, 2, 4096)
	require.NoError(t, err)
	l.Close()
	keep := filepath.Join(dir, sdr.LayerFileName(1))
	require.NoError(t, os.WriteFile(keep, nil, 0o644))
	require.NoError(t, RemovePartialLayers(dir))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, sdr.LayerFileName(1), entries[0].Name())
}

// TestFileChecksum checks both read-backs a commit may use against the
// CRC-32C of the bytes written, for lengths that are and are not whole
// pages or whole read chunks.
func TestFileChecksum(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int64{1, 100, 4096, 4097, directChunk, directChunk + 4096, 3*directChunk - 5} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := make([]byte, size+8192)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			path := filepath.Join(dir, fmt.Sprint(size))
			require.NoError(t, os.WriteFile(path, data[:size], 0o644))
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			require.NoError(t, err)
			defer f.Close()
			want := crc32.Checksum(data[:size], crcTable())

			got, err := fileChecksum(f, size)
			require.NoError(t, err)
			require.Equal(t, want, got)
			direct, ok, err := directChecksum(f, size)
			if !ok {
				t.Skipf("%s refuses O_DIRECT", dir)
			}
			require.NoError(t, err)
			require.Equal(t, want, direct)
			// A prefix of the file, as resuming sums its durable part.
			prefix, ok, err := directChecksum(f, size/2)
			require.True(t, ok)
			require.NoError(t, err)
			require.Equal(t, crc32.Checksum(data[:size/2], crcTable()), prefix)
			// A file shorter than asked for is an error, not a short sum.
			_, _, err = directChecksum(f, size+8192)
			require.ErrorContains(t, err, "bytes short")
			require.ErrorContains(t, err, path)
		})
	}
}
