package sealer

import (
	"context"
	"fmt"
	"os"

	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// Replica is a sector whose replica id the caller already computed, as
// Curio's SDR task does (it builds tree_d and the replica id in Go and asks
// filecoin-ffi only for the layers).
type Replica struct {
	// CacheDir is the sector's cache directory; the layer files go there.
	CacheDir  string
	ReplicaID [32]byte
}

// LabelOptions are GenerateSDR's and LabelBatch's settings; the zero value
// picks every default.
type LabelOptions struct {
	// ParentCacheDir as in Batch: "" means $FIL_PROOFS_PARENT_CACHE, else
	// /var/tmp/filecoin-parents.
	ParentCacheDir string
	// Options are the labeling knobs.
	labeler.Options
	// Live and OnProgress as in labeler.Config.
	Live       *labeler.Live
	OnProgress func(sector, layer int, nodesDone uint64)
	// Measure asks for the report's costly figures (LabelRequest.Measure).
	Measure bool
	// OnParentCache as in LabelRequest.
	OnParentCache func(done, total uint64)
}

// GenerateSDR writes the proof's layers for one sector into cacheDir: the
// drop-in for filecoin-ffi's GenerateSDR(proofType, cacheDir, replicaID),
// with byte-identical sc-02-data-layer-<k>.dat files. Run again after a
// crash, it resumes. One call has one sector's pool; to share a pool,
// label several sectors in one LabelBatch.
func GenerateSDR(ctx context.Context, proof sdr.Proof, cacheDir string, replicaID [32]byte, opts LabelOptions) (*Report, error) {
	return LabelBatch(ctx, proof, []Replica{{CacheDir: cacheDir, ReplicaID: replicaID}}, opts)
}

// LabelBatch labels sectors of one proof through one shared pool: each
// sector's layers go to its cache directory. It returns the batch's
// report.
func LabelBatch(ctx context.Context, proof sdr.Proof, sectors []Replica, opts LabelOptions) (*Report, error) {
	if reg, err := sdr.ProofByID(proof.ID); err != nil || reg != proof {
		return nil, fmt.Errorf("proof %q (id %d) is not a registered seal proof: take it from sdr.ProofByName or sdr.ProofByID", proof.Name, proof.ID)
	}
	g, err := sdr.NewProofGraph(proof)
	if err != nil {
		return nil, err
	}
	req := LabelRequest{
		Config: labeler.Config{
			Graph: g, Layers: proof.Layers, Options: opts.Options,
			Live: opts.Live, OnProgress: opts.OnProgress,
		},
		ParentCacheDir: opts.ParentCacheDir,
		Name:           proof.Name,
		Measure:        opts.Measure,
		OnParentCache:  opts.OnParentCache,
	}
	for i, s := range sectors {
		if s.CacheDir == "" {
			return nil, fmt.Errorf("sector %d: no cache directory", i)
		}
		if err := os.MkdirAll(s.CacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("sector %d: %w", i, err)
		}
		req.Sectors = append(req.Sectors, labeler.Sector{ReplicaID: s.ReplicaID, Dir: s.CacheDir})
	}
	return Label(ctx, req)
}
