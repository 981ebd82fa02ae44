package sealer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// CacheDirName is the storage root's subdirectory holding sectors' cache
// directories, as in Lotus and Curio (storiface.FTCache).
const CacheDirName = "cache"

// SectorInput is one sector to seal, as the chain and the deal pipeline
// know it.
type SectorInput struct {
	// ProverID is the miner's prover id: ActorProverID(1000) for f01000.
	ProverID ProverID
	// SectorNumber is the sector's number within the miner.
	SectorNumber uint64
	// Ticket is the sealing randomness (the ticket drawn from the chain
	// for this sector), 32 bytes.
	Ticket [32]byte
	// Staged is the path of the sector's staged data, Lotus' unsealed
	// file: the Fr32-padded pieces, exactly the sector size, optionally
	// followed by Lotus' unsealed-file trailer. "" seals a
	// committed-capacity sector, all zeros, without reading any file.
	Staged string
	// WantCommD, when set, is the comm_d the sector's pieces add up to
	// (the unsealed CID's digest). The batch refuses, before labeling, a
	// sector whose staged data gives another, as the reference's PC1
	// checks its pieces.
	WantCommD *[32]byte
	// CacheDir overrides the sector's cache directory, by default
	// Batch.Root/cache/s-t0<actor>-<number>. Required when ProverID is not
	// an actor's.
	CacheDir string
}

// Name is the sector's name in Lotus' and Curio's storage layout
// (s-t01000-5), or, for a prover id that is no actor's, the prover id and
// number.
func (s SectorInput) Name() string {
	if a, ok := s.ProverID.Actor(); ok {
		return SectorName(a, s.SectorNumber)
	}
	return fmt.Sprintf("%s-%d", s.ProverID, s.SectorNumber)
}

// Batch is a batch of sectors sealed through one pool, and how.
type Batch struct {
	// Proof is the sectors' registered seal proof; its porep id enters the
	// replica ids and selects the graph.
	Proof sdr.Proof
	// Layers overrides the proof's layer count (tests; PC2 expects the
	// proof's). 0 means Proof.Layers.
	Layers int
	// Root is the storage root: sector cache directories are made under
	// Root/cache unless a sector names its own.
	Root string
	// Sectors are the sectors to seal; Result.Sectors follows their order.
	Sectors []SectorInput
	// ParentCacheDir holds the graph's parent cache (generated when
	// missing); "" means $FIL_PROOFS_PARENT_CACHE, else
	// /var/tmp/filecoin-parents, as rust-fil-proofs.
	ParentCacheDir string
	// Options are the labeling knobs (pool size, DRAM budget, parallel,
	// lockstep, ...); the zero value picks every default.
	labeler.Options
	// Measure asks for the report's costly figures (LabelRequest.Measure).
	Measure bool
	// Live, if set, shows the pool's and the spill tier's counters while
	// the sectors are labeled (labeler.Live; package metrics reads it).
	Live *labeler.Live
	// OnProgress, if set, is told how the batch advances. During labeling
	// it is called from the hashing goroutines, several at once, after
	// every block: it must be cheap and safe for concurrent use.
	OnProgress func(Progress)
	// OnParentCache, if set, follows the parent cache's generation when
	// the batch has to generate it first (LabelRequest.OnParentCache).
	OnParentCache func(done, total uint64)
}

// Stage is what a batch is doing for a sector.
type Stage int

const (
	// StageTreeD is building tree_d and comm_d: Done and Total count
	// staged bytes.
	StageTreeD Stage = iota + 1
	// StageLabel is labeling: Layer is the layer (from 1), Done and Total
	// count its nodes.
	StageLabel
)

func (s Stage) String() string {
	switch s {
	case StageTreeD:
		return "tree_d"
	case StageLabel:
		return "label"
	}
	return fmt.Sprintf("Stage(%d)", int(s))
}

// Progress is one progress report.
type Progress struct {
	// Sector is the index into Batch.Sectors.
	Sector int
	Stage  Stage
	// Layer is the layer being labeled, from 1 (StageLabel only).
	Layer       int
	Done, Total uint64
}

// SectorResult is what PC1 produced for one sector.
type SectorResult struct {
	// Name is SectorInput.Name.
	Name string
	// CommD is tree_d's root, the sector's unsealed commitment.
	CommD [32]byte
	// ReplicaID is the replica id the layers were labeled with.
	ReplicaID [32]byte
	// CacheDir holds TreeD and Layers.
	CacheDir string
	// TreeD is the path of sc-02-data-tree-d.dat.
	TreeD string
	// Layers are the paths of sc-02-data-layer-<k>.dat, k = 1..L.
	Layers []string
	// Phase1Output is the path of the PreCommit1 output JSON
	// (Phase1OutputFile, as rust-fil-proofs returns it; LotusPreCommit1Out
	// gives Lotus' form), or "" when Batch.Layers overrode the proof's
	// layer count, which no PC2 takes.
	Phase1Output string
}

// Result is a finished batch.
type Result struct {
	Sectors []SectorResult
	// Report is the labeling's measurements.
	Report *Report
}

// plan is a validated batch.
type plan struct {
	graph  *sdr.Graph
	layers int
	dirs   []string
}

// check validates b without touching the disk beyond reading the staged
// files' sizes and trailers, so a refused batch leaves nothing behind.
func (b *Batch) check() (plan, error) {
	var p plan
	if b.Proof.Name == "" {
		return p, errors.New("sealer: no proof")
	}
	// The porep id, the phase-1 output and PC2 all name a registered
	// proof; a hand-made sdr.Proof would seal something no chain accepts.
	if reg, err := sdr.ProofByID(b.Proof.ID); err != nil || reg != b.Proof {
		return p, fmt.Errorf("proof %q (id %d) is not a registered seal proof: take it from sdr.ProofByName or sdr.ProofByID", b.Proof.Name, b.Proof.ID)
	}
	g, err := sdr.NewProofGraph(b.Proof)
	if err != nil {
		return p, fmt.Errorf("proof %s: %w", b.Proof.Name, err)
	}
	p.graph = g
	p.layers = b.Layers
	if p.layers == 0 {
		p.layers = b.Proof.Layers
	}
	if p.layers < 1 {
		return p, fmt.Errorf("layer count %d: must be at least 1", p.layers)
	}
	if len(b.Sectors) == 0 {
		return p, errors.New("sealer: no sectors")
	}
	seen := make(map[string]int, len(b.Sectors))
	for i, s := range b.Sectors {
		dir := s.CacheDir
		if dir == "" {
			a, ok := s.ProverID.Actor()
			switch {
			case !ok:
				return p, fmt.Errorf("sector %d (%s): prover id %s is not a miner actor's, so it has no Lotus sector name: give the sector a cache directory", i, s.Name(), s.ProverID)
			case b.Root == "":
				return p, fmt.Errorf("sector %d (%s): no storage root and no cache directory", i, s.Name())
			}
			dir = filepath.Join(b.Root, CacheDirName, SectorName(a, s.SectorNumber))
		}
		dir = filepath.Clean(dir)
		if j, dup := seen[dir]; dup {
			return p, fmt.Errorf("sector %d (%s) and sector %d (%s) share the cache directory %s", j, b.Sectors[j].Name(), i, s.Name(), dir)
		}
		seen[dir] = i
		p.dirs = append(p.dirs, dir)
		if s.Staged != "" {
			if err := checkStaged(s.Staged, b.Proof.SectorSize); err != nil {
				return p, fmt.Errorf("sector %d (%s): %w", i, s.Name(), err)
			}
		}
	}
	return p, nil
}

// SealBatch runs PC1 for every sector of b through one pool: it builds
// each sector's tree_d (and comm_d) from its staged data, derives its
// replica id, labels all sectors together and returns where everything
// is. See the package documentation for the layout, what a rerun does and
// what is left to the caller.
//
// Cancelling ctx stops the batch; finished blocks stay on disk and the
// same batch run again resumes. A batch refused before labeling starts
// (bad input, pool size out of bounds, parent cache broken) removes the
// cache directories it created.
func SealBatch(ctx context.Context, b Batch) (res *Result, err error) {
	p, err := b.check()
	if err != nil {
		return nil, err
	}
	req := LabelRequest{
		Config: labeler.Config{
			Graph:   p.graph,
			Layers:  p.layers,
			Options: b.Options,
			Live:    b.Live,
		},
		ParentCacheDir: b.ParentCacheDir,
		Name:           b.Proof.Name,
		Measure:        b.Measure,
	}
	// Refused before anything is written: a bad pool size or DRAM budget,
	// or a parent cache that cannot be had.
	check := req.Config
	check.Sectors = make([]labeler.Sector, len(b.Sectors))
	if err := check.Check(); err != nil {
		return nil, err
	}
	// Held, under a shared lock, until the batch ends: no one regenerates
	// it under the labeler (rust-fil-proofs takes the same lock).
	parents, err := acquireParentCache(ctx, p.graph, b.ParentCacheDir, b.LockOptions.OnWait, b.OnParentCache)
	if err != nil {
		return nil, err
	}
	defer parents.Close()
	req.ParentCache = parents.Info.Path

	// Every sector's directory is made, then all are locked before
	// anything is written into any, and stay locked until the batch ends
	// (a failed batch's removeUnlabeled releases the locks before it
	// removes directories).
	var locks *blockio.SectorLocks
	defer func() { locks.Unlock() }()
	var made []string
	defer func() {
		if err != nil {
			removeUnlabeled(made, p.dirs, locks)
		}
	}()
	for i, s := range b.Sectors {
		m, err := blockio.MkdirAll(p.dirs[i])
		made = append(made, m...)
		if err != nil {
			return nil, fmt.Errorf("sector %d (%s): cache directory %s: %w", i, s.Name(), p.dirs[i], err)
		}
	}
	if locks, err = blockio.LockSectors(ctx, p.dirs, b.LockOptions); err != nil {
		var locked *blockio.LockedError
		if errors.As(err, &locked) {
			if i := slices.Index(p.dirs, locked.Dir); i >= 0 {
				return nil, fmt.Errorf("sector %d (%s): %w", i, b.Sectors[i].Name(), err)
			}
		}
		return nil, err
	}
	req.Locks = locks
	res = &Result{Sectors: make([]SectorResult, len(b.Sectors))}
	size := b.Proof.SectorSize
	porepID := b.Proof.PorepID()
	for i, s := range b.Sectors {
		dir := p.dirs[i]
		// The phase-1 output is written last, so that having one means
		// the sector's PC1 is complete; one from an earlier batch may
		// describe other inputs' layers, about to be relabeled.
		dropPhase1 := func() error {
			if err := os.Remove(filepath.Join(dir, Phase1OutputFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("earlier phase-1 output: %w", err)
			}
			return nil
		}
		var progress func(uint64)
		if b.OnProgress != nil {
			progress = func(done uint64) {
				b.OnProgress(Progress{Sector: i, Stage: StageTreeD, Done: done, Total: size})
			}
		}
		commD, err := writeTreeD(ctx, s.Staged, size, dir, s.WantCommD, dropPhase1, progress)
		if err != nil {
			return nil, fmt.Errorf("sector %d (%s): %w", i, s.Name(), err)
		}
		sr := SectorResult{
			Name:      s.Name(),
			CommD:     commD,
			ReplicaID: sdr.ReplicaID(s.ProverID, s.SectorNumber, s.Ticket, commD, porepID),
			CacheDir:  dir,
			TreeD:     filepath.Join(dir, sdr.TreeDFileName),
		}
		for k := 1; k <= p.layers; k++ {
			sr.Layers = append(sr.Layers, blockio.SectorDir(dir).Layer(k))
		}
		res.Sectors[i] = sr
		req.Sectors = append(req.Sectors, labeler.Sector{ReplicaID: sr.ReplicaID, Dir: dir})
	}

	if b.OnProgress != nil {
		nodes := p.graph.Nodes()
		req.OnProgress = func(sector, layer int, done uint64) {
			b.OnProgress(Progress{Sector: sector, Stage: StageLabel, Layer: layer, Done: done, Total: nodes})
		}
	}
	if res.Report, err = Label(ctx, req); err != nil {
		return nil, err
	}

	// Every layer of every sector is committed: the phase-1 output may
	// say so. A layer count other than the proof's is no input PC2 takes,
	// so such a batch (tests, experiments) gets none.
	if p.layers != b.Proof.Layers {
		return res, nil
	}
	for i := range res.Sectors {
		sr := &res.Sectors[i]
		in := Phase1Input{Proof: b.Proof, CommD: sr.CommD, CacheDir: sr.CacheDir, Layers: p.layers}
		if err := WritePhase1Output(sr.CacheDir, in); err != nil {
			return nil, fmt.Errorf("sector %d (%s): %w", i, sr.Name, err)
		}
		sr.Phase1Output = filepath.Join(sr.CacheDir, Phase1OutputFile)
	}
	return res, nil
}

// removeUnlabeled undoes, after a failed batch, the cache directories this
// batch created whose sector never got to labeling: their tree_d goes (it
// is recomputed on every run anyway) and so do the directories, if that
// leaves them empty. A directory with any layer file, partial or not, is
// kept whole, so the next run resumes it. The sectors' locks are released
// before the directories go, as a directory holding its lock file is not
// empty.
func removeUnlabeled(made, dirs []string, locks *blockio.SectorLocks) {
dirs:
	for _, dir := range dirs {
		if !slices.Contains(made, dir) {
			continue
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.Name() != sdr.TreeDFileName && e.Name() != blockio.SectorMetaFile && e.Name() != blockio.SectorLockFile {
				continue dirs
			}
		}
		for _, e := range entries {
			if e.Name() != blockio.SectorLockFile { // it goes with the lock
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	locks.Unlock()
	for _, d := range slices.Backward(made) {
		os.Remove(d) // only if empty
	}
}
