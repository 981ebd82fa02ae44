package blockio

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// TestParentCacheOnGenerate checks what OnGenerate is told: 0, then every
// chunk's end in order, then total once the cache is usable; nothing for a
// cache that is found; a regeneration like a generation; a cancelled
// generation stops short of total.
func TestParentCacheOnGenerate(t *testing.T) {
	const chunk = parentGenChunkNodes
	for _, tc := range []struct {
		name    string
		proof   string
		workers int
		// setup prepares dir; nil leaves it empty.
		setup      func(t *testing.T, g *sdr.Graph, dir string)
		regenerate bool
		cancelAt   uint64 // cancel once done reaches this (0: never)
		want       []uint64
		wantErr    error
	}{
		{name: "2KiB, one chunk", proof: "StackedDrg2KiBV1_1", want: []uint64{0, 64}},
		{name: "8MiB, one worker", proof: "StackedDrg8MiBV1_1", workers: 1, want: []uint64{0, chunk, 2 * chunk, 3 * chunk, 4 * chunk}},
		{name: "8MiB, four workers", proof: "StackedDrg8MiBV1", workers: 4, want: []uint64{0, chunk, 2 * chunk, 3 * chunk, 4 * chunk}},
		{name: "found: not told", proof: "StackedDrg2KiBV1_1", setup: func(t *testing.T, g *sdr.Graph, dir string) {
			_, err := EnsureParentCache(context.Background(), g, dir, ParentCacheOptions{})
			require.NoError(t, err)
		}, want: nil},
		{name: "wrong size regenerated", proof: "StackedDrg2KiBV1_1", regenerate: true, setup: func(t *testing.T, g *sdr.Graph, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, sdr.ParentCacheFileName(g)), make([]byte, 1000), 0o644))
		}, want: []uint64{0, 64}},
		{name: "cancelled after the first chunk", proof: "StackedDrg8MiBV1_1", workers: 1, cancelAt: chunk, want: []uint64{0, chunk}, wantErr: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := proofGraph(t, tc.proof)
			dir := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, g, dir)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var got []uint64
			info, err := EnsureParentCache(ctx, g, dir, ParentCacheOptions{
				Workers:    tc.workers,
				Regenerate: tc.regenerate,
				OnGenerate: func(done, total uint64) {
					require.Equal(t, g.Nodes(), total)
					// Called on the caller's goroutine, so require may
					// stop the test here. Until total the file is marked
					// as being generated; at total it is complete.
					marker := filepath.Join(dir, sdr.ParentCacheFileName(g)) + generatingSuffix
					if done < total {
						require.FileExists(t, marker)
					} else {
						require.NoFileExists(t, marker)
					}
					got = append(got, done)
					if tc.cancelAt != 0 && done >= tc.cancelAt {
						cancel()
					}
				},
			})
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.Equal(t, tc.want, got)
				require.NotContains(t, got, g.Nodes(), "a failed generation never reports total")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.Equal(t, got != nil, info.Generated)
		})
	}
}
