package sealer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireReferenceLayers compares every layer file in dir with the oracle.
func requireReferenceLayers(t *testing.T, proof sdr.Proof, dir string, replicaID [32]byte) {
	t.Helper()
	g, err := sdr.NewProofGraph(proof)
	require.NoError(t, err)
	require.NoError(t, sdr.ReferenceLabels(g, sdr.ParentTable(g), replicaID, proof.Layers, func(layer int, labels []byte) error {
		got, err := os.ReadFile(filepath.Join(dir, sdr.LayerFileName(layer)))
		require.NoError(t, err)
		require.True(t, bytes.Equal(labels, got), "%s layer %d", dir, layer)
		return nil
	}))
}

// TestLibraryCallsTakeTheSectorLock: GenerateSDR and SealBatch on a
// directory another seal holds stop before writing anything, with a
// *blockio.LockedError naming it; with LockOptions.Wait they wait for it and
// then seal.
func TestLibraryCallsTakeTheSectorLock(t *testing.T) {
	ctx := context.Background()
	proof := proofNamed(t, "StackedDrg2KiBV1_1")
	root := t.TempDir()
	parents := filepath.Join(root, "parents")
	in := SectorInput{ProverID: ActorProverID(1000), SectorNumber: 7, Ticket: ticketOf(3)}
	sealDir := filepath.Join(root, CacheDirName, in.Name())
	calls := []struct {
		name string
		dir  string
		run  func(wait bool, onWait func(string)) ([32]byte, error)
	}{
		{name: "GenerateSDR", dir: filepath.Join(root, "sdr"), run: func(wait bool, onWait func(string)) ([32]byte, error) {
			id := [32]byte{5}
			_, err := GenerateSDR(ctx, proof, filepath.Join(root, "sdr"), id,
				LabelOptions{ParentCacheDir: parents, Options: labeler.Options{LockOptions: blockio.LockOptions{Wait: wait, OnWait: onWait}}})
			return id, err
		}},
		{name: "SealBatch", dir: sealDir, run: func(wait bool, onWait func(string)) ([32]byte, error) {
			res, err := SealBatch(ctx, Batch{Proof: proof, Root: root, Sectors: []SectorInput{in},
				ParentCacheDir: parents, Options: labeler.Options{LockOptions: blockio.LockOptions{Wait: wait, OnWait: onWait}}})
			if err != nil {
				return [32]byte{}, err
			}
			return res.Sectors[0].ReplicaID, nil
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, os.MkdirAll(c.dir, 0o755))
			held, err := blockio.LockSector(ctx, c.dir, blockio.LockOptions{})
			require.NoError(t, err)

			_, err = c.run(false, nil)
			var locked *blockio.LockedError
			require.ErrorAs(t, err, &locked)
			require.Equal(t, c.dir, locked.Dir)
			require.Equal(t, os.Getpid(), locked.PID)
			entries, err := os.ReadDir(c.dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "nothing but the holder's lock file: %v", entries)

			waiting := make(chan string, 1)
			type result struct {
				id  [32]byte
				err error
			}
			done := make(chan result)
			go func() {
				id, err := c.run(true, func(msg string) { waiting <- msg })
				done <- result{id, err}
			}()
			require.Contains(t, <-waiting, c.dir)
			held.Unlock()
			r := <-done
			require.NoError(t, r.err)
			requireReferenceLayers(t, proof, c.dir, r.id)
			require.NoFileExists(t, filepath.Join(c.dir, blockio.SectorLockFile))
		})
	}
}

// TestConcurrentGenerateSDROneNewCache: SDR calls from several goroutines
// of one process, each for its own sector, on a parent cache that does
// not exist yet: all finish, with one cache file between them.
func TestConcurrentGenerateSDROneNewCache(t *testing.T) {
	ctx := context.Background()
	proof := proofNamed(t, "StackedDrg2KiBV1_1")
	root := t.TempDir()
	parents := filepath.Join(root, "parents")
	var wg sync.WaitGroup
	dir := func(i int) string { return filepath.Join(root, "sector", string(rune('a'+i))) }
	for i := range 3 {
		wg.Go(func() {
			_, err := GenerateSDR(ctx, proof, dir(i), [32]byte{byte(i + 1)}, LabelOptions{ParentCacheDir: parents})
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	for i := range 3 {
		requireReferenceLayers(t, proof, dir(i), [32]byte{byte(i + 1)})
	}
	entries, err := os.ReadDir(parents)
	require.NoError(t, err)
	require.Len(t, entries, 1, "one cache: %v", entries)
}
