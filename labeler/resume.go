package labeler

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// sectorStart is where a sector's labeling starts: after the layers an
// earlier run committed and that still check out, inside the first layer
// it did not commit (how far inside is decided when that layer's partial
// file is reopened).
type sectorStart struct {
	layer int
	meta  blockio.SectorMeta
	// restarted says why work found in the directory was thrown away.
	restarted string
}

// checksumText is how a committed layer's CRC-32C is recorded in the
// sector's metadata.
func checksumText(crc uint32) string { return fmt.Sprintf("crc32c:%08x", crc) }

// planStart reads what an earlier run left in the sector's directory and
// decides where to start. Committed layers are trusted only when their
// file still has the checksum recorded when it was committed; anything
// inconsistent (another replica id, graph or layer count, an altered,
// truncated or missing layer file) restarts the sector from scratch,
// removing its layer files, rather than guessing.
func planStart(s Sector, want blockio.SectorMeta, opts ...blockio.FileOption) (sectorStart, error) {
	start := sectorStart{layer: 1, meta: want}
	have, err := blockio.ReadSectorMeta(s.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return start, restartSector(s.Dir, want.Layers, &start, "", opts...)
	case err != nil:
		return start, restartSector(s.Dir, want.Layers, &start, err.Error(), opts...)
	}
	if why := metaDiffers(have, want); why != "" {
		return start, restartSector(s.Dir, max(have.Layers, want.Layers), &start, why, opts...)
	}
	for k := 1; k <= want.Layers; k++ {
		if k > len(have.LayerChecksums) || have.LayerChecksums[k-1] == "" {
			break
		}
		crc, err := blockio.LayerChecksum(s.Dir, k, want.SectorSize)
		if err != nil {
			return start, restartSector(s.Dir, want.Layers, &start, fmt.Sprintf("layer %d: %v", k, err), opts...)
		}
		if got := checksumText(crc); got != have.LayerChecksums[k-1] {
			return start, restartSector(s.Dir, want.Layers, &start,
				fmt.Sprintf("layer %d file %s has checksum %s, %s when it was committed", k, sdr.LayerFileName(k), got, have.LayerChecksums[k-1]), opts...)
		}
		start.layer = k + 1
		start.meta.LayerChecksums = append(start.meta.LayerChecksums, have.LayerChecksums[k-1])
	}
	return start, blockio.WriteSectorMeta(s.Dir, start.meta, opts...)
}

// metaDiffers says how an earlier run's sector differs from this one's, or
// "" when they are the same sector.
func metaDiffers(have, want blockio.SectorMeta) string {
	switch {
	case have.ReplicaID != want.ReplicaID:
		return fmt.Sprintf("replica id %x, now %x", have.ReplicaID, want.ReplicaID)
	case have.SectorSize != want.SectorSize || have.PorepID != want.PorepID || have.API != want.API:
		return fmt.Sprintf("graph (%d bytes, porep id %x, API %s), now (%d bytes, porep id %x, API %s)",
			have.SectorSize, have.PorepID, have.API, want.SectorSize, want.PorepID, want.API)
	case have.Layers != want.Layers:
		return fmt.Sprintf("%d layers, now %d", have.Layers, want.Layers)
	}
	return ""
}

// restartSector removes every layer file, partial or committed, of the
// sector in dir and writes its fresh metadata. why, when not empty, is
// recorded as the reason.
func restartSector(dir string, layers int, start *sectorStart, why string, opts ...blockio.FileOption) error {
	if why != "" {
		start.restarted = "earlier run's work discarded: " + why
	}
	if err := blockio.RemovePartialLayers(dir); err != nil {
		return err
	}
	for k := 1; k <= layers; k++ {
		path := blockio.SectorDir(dir).Layer(k)
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", path, err)
		}
	}
	start.layer = 1
	start.meta.LayerChecksums = nil
	return blockio.WriteSectorMeta(dir, start.meta, opts...)
}
