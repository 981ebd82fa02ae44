package blockio

import (
	"fmt"
	"path/filepath"

	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// SectorDir is a sector's cache directory, and the one place that knows the
// names of what pc1-tiered keeps in it:
//
//   - sc-02-data-layer-<k>.dat: committed layer k (from 1), rust-fil-proofs'
//     name and format;
//   - sc-02-data-layer-<k>.dat.partial: layer k while it is written, under
//     a name PC2 never reads;
//   - sc-02-data-layer-<k>.dat.partial.progress: the partial file's log of
//     durable blocks, which resuming reads (progress.go);
//   - pc1-tiered.json: the sector's metadata (SectorMeta).
type SectorDir string

const (
	// partialSuffix marks a layer file still being written. PC2 and
	// resuming look only at final names, so a crash never leaves a short
	// file that looks complete.
	partialSuffix = ".partial"
	// progressSuffix names the partial file's progress log (progress.go).
	progressSuffix = ".progress"
	// layerGlob matches every layer file name and its partial forms.
	layerGlob = "sc-02-data-layer-*.dat"
)

// String is the directory's path.
func (d SectorDir) String() string { return string(d) }

// Layer is the path of committed layer k (from 1).
func (d SectorDir) Layer(k int) string { return filepath.Join(string(d), sdr.LayerFileName(k)) }

// PartialLayer is the path layer k is written under until it is committed.
func (d SectorDir) PartialLayer(k int) string { return d.Layer(k) + partialSuffix }

// ProgressLog is the path of the partial layer k's progress log.
func (d SectorDir) ProgressLog(k int) string { return d.PartialLayer(k) + progressSuffix }

// Meta is the path of the sector's metadata file.
func (d SectorDir) Meta() string { return filepath.Join(string(d), SectorMetaFile) }

// LayerFiles lists the layer files in the directory, committed and
// partial (not progress logs): what a seal's page cache of its layers is
// made of.
func (d SectorDir) LayerFiles() ([]string, error) {
	return d.glob(layerGlob, layerGlob+partialSuffix)
}

// partialFiles lists the partial layer files and their progress logs.
func (d SectorDir) partialFiles() ([]string, error) {
	return d.glob(layerGlob+partialSuffix, layerGlob+partialSuffix+progressSuffix)
}

func (d SectorDir) glob(patterns ...string) ([]string, error) {
	var files []string
	for _, p := range patterns {
		m, err := filepath.Glob(filepath.Join(string(d), p))
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", d, err)
		}
		files = append(files, m...)
	}
	return files, nil
}
