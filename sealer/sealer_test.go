package sealer

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/labeler"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

func proofNamed(t *testing.T, name string) sdr.Proof {
	t.Helper()
	p, err := sdr.ProofByName(name)
	require.NoError(t, err)
	return p
}

func zeroCommD(t *testing.T, sectorSize uint64) [32]byte {
	t.Helper()
	raw, err := os.ReadFile("../testdata/vectors/zero_commd.json")
	require.NoError(t, err)
	var v struct {
		Cases []struct {
			SectorSize uint64 `json:"sector_size"`
			CommD      string `json:"comm_d"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(raw, &v))
	for _, c := range v.Cases {
		if c.SectorSize == sectorSize {
			b, err := hex.DecodeString(c.CommD)
			require.NoError(t, err)
			return [32]byte(b)
		}
	}
	t.Fatalf("zero_commd.json has no %d-byte case", sectorSize)
	return [32]byte{}
}

func ticketOf(b byte) [32]byte {
	var t [32]byte
	for i := range t {
		t[i] = b + byte(i)
	}
	return t
}

// progressLog records progress reports; it is safe for concurrent use.
type progressLog struct {
	mu      sync.Mutex
	treeD   map[int]uint64 // sector -> last Done
	labeled map[[2]int]uint64
}

func newProgressLog() *progressLog {
	return &progressLog{treeD: map[int]uint64{}, labeled: map[[2]int]uint64{}}
}

func (l *progressLog) add(p Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch p.Stage {
	case StageTreeD:
		l.treeD[p.Sector] = max(l.treeD[p.Sector], p.Done)
	case StageLabel:
		k := [2]int{p.Sector, p.Layer}
		l.labeled[k] = max(l.labeled[k], p.Done)
	}
}

// TestSealBatch8MiBCC seals a committed-capacity 8 MiB sector from its
// real inputs and checks comm_d against the reference vector, tree_d's
// size, the cache directory's name, the replica id, and that its layers
// are byte for byte what labeling that replica id directly gives (what
// pc1-tiered seal --replica-id does).
func TestSealBatch8MiBCC(t *testing.T) {
	if testing.Short() {
		t.Skip("8 MiB seal: run without -short")
	}
	ctx := context.Background()
	proof := proofNamed(t, "StackedDrg8MiBV1_1")
	const size = 8 << 20
	root, cache := t.TempDir(), t.TempDir()
	ticket := ticketOf(7)
	log := newProgressLog()
	batch := Batch{
		Proof:          proof,
		Layers:         2,
		Root:           root,
		Sectors:        []SectorInput{{ProverID: ActorProverID(1000), SectorNumber: 42, Ticket: ticket}},
		ParentCacheDir: cache,
		OnProgress:     log.add,
	}
	res, err := SealBatch(ctx, batch)
	require.NoError(t, err)
	require.Len(t, res.Sectors, 1)
	sr := res.Sectors[0]

	require.Equal(t, zeroCommD(t, size), sr.CommD, "comm_d of an all-zero 8 MiB sector")
	require.Equal(t, "s-t01000-42", sr.Name)
	require.Equal(t, filepath.Join(root, "cache", "s-t01000-42"), sr.CacheDir)
	require.Equal(t, filepath.Join(sr.CacheDir, "sc-02-data-tree-d.dat"), sr.TreeD)
	require.Equal(t, []string{
		filepath.Join(sr.CacheDir, "sc-02-data-layer-1.dat"),
		filepath.Join(sr.CacheDir, "sc-02-data-layer-2.dat"),
	}, sr.Layers)
	st, err := os.Stat(sr.TreeD)
	require.NoError(t, err)
	require.EqualValues(t, 2*size-32, st.Size(), "tree_d is a full binary tree: 2S - 32 bytes")

	// The replica id as go-state-types' ReplicaId spells it out: prover id
	// e8 07 00.., sector number big-endian, ticket, comm_d, porep id 06 00..
	var porepID [32]byte
	porepID[0] = 6
	require.Equal(t, proof.PorepID(), porepID)
	require.Equal(t, sdr.ReplicaID([32]byte{0xe8, 0x07}, 42, ticket, sr.CommD, porepID), sr.ReplicaID)
	require.Equal(t, hex.EncodeToString(sr.ReplicaID[:]), res.Report.Sectors[0].ReplicaID)
	require.Equal(t, "StackedDrg8MiBV1_1", res.Report.Proof)

	requirePhase1Output(t, proof, sr)

	require.Equal(t, uint64(size), log.treeD[0], "tree_d progress reaches the sector size")
	require.Equal(t, uint64(size/32), log.labeled[[2]int{0, 2}], "labeling progress reaches the last node of layer 2")

	// Labeling the same replica id directly gives the same files.
	ref := t.TempDir()
	g, err := sdr.NewProofGraph(proof)
	require.NoError(t, err)
	_, err = labeler.Run(ctx, labeler.Config{Graph: g, ParentCache: res.Report.ParentCache, Layers: 2,
		Sectors: []labeler.Sector{{ReplicaID: sr.ReplicaID, Dir: ref}}})
	require.NoError(t, err)
	for k, layer := range sr.Layers {
		got, err := os.ReadFile(layer)
		require.NoError(t, err)
		want, err := os.ReadFile(filepath.Join(ref, sdr.LayerFileName(k+1)))
		require.NoError(t, err)
		require.Len(t, got, size)
		require.True(t, string(want) == string(got), "layer %d differs from labeling the replica id directly", k+1)
	}

	// Running the same batch again finds every layer committed: the same
	// answer, nothing labeled.
	again, err := SealBatch(ctx, batch)
	require.NoError(t, err)
	require.Equal(t, res.Sectors, again.Sectors)
	require.Zero(t, again.Report.Sectors[0].Nodes)
}

// TestSealBatchStaged seals, in one batch through a pool of two jobs,
// sectors from staged data (plain and with Lotus' trailer), a CC sector and
// a raw prover id with its own cache directory, and checks comm_d, the
// replica ids and every layer against the reference labeler.
func TestSealBatchStaged(t *testing.T) {
	ctx := context.Background()
	proof := proofNamed(t, "StackedDrg2KiBV1_1")
	const size = 2048
	root, src := t.TempDir(), t.TempDir()
	data := fr32Data(11, size)
	staged := writeFile(t, src, "staged", data)
	trailer := writeFile(t, src, "unsealed", withLotusTrailer(data, []byte{0x0c, 0x80, 0x01}))
	commD, err := sdr.CommD(bytesReader(data), size/32)
	require.NoError(t, err)
	zero := zeroCommD(t, size)
	require.NotEqual(t, zero, commD)

	var raw ProverID
	raw[0], raw[31] = 0x80, 0x01 // no actor's
	own := filepath.Join(t.TempDir(), "own-cache")
	in := []SectorInput{
		{ProverID: ActorProverID(1000), SectorNumber: 1, Ticket: ticketOf(1), Staged: staged, WantCommD: &commD},
		{ProverID: ActorProverID(1000), SectorNumber: 2, Ticket: ticketOf(1)},
		{ProverID: ActorProverID(2000), SectorNumber: 1, Ticket: ticketOf(2), Staged: trailer},
		{ProverID: raw, SectorNumber: 1, Ticket: ticketOf(3), Staged: staged, CacheDir: own},
	}
	log := newProgressLog()
	res, err := SealBatch(ctx, Batch{Proof: proof, Root: root, Sectors: in, ParentCacheDir: t.TempDir(), Options: labeler.Options{Parallel: 2}, OnProgress: log.add})
	require.NoError(t, err)
	require.Len(t, res.Sectors, len(in))

	g, err := sdr.NewProofGraph(proof)
	require.NoError(t, err)
	for i, tc := range []struct {
		dir   string
		commD [32]byte
	}{
		{filepath.Join(root, "cache", "s-t01000-1"), commD},
		{filepath.Join(root, "cache", "s-t01000-2"), zero},
		{filepath.Join(root, "cache", "s-t02000-1"), commD},
		{own, commD},
	} {
		sr := res.Sectors[i]
		require.Equal(t, tc.dir, sr.CacheDir, "sector %d", i)
		require.Equal(t, tc.commD, sr.CommD, "sector %d", i)
		require.Equal(t, sdr.ReplicaID(in[i].ProverID, in[i].SectorNumber, in[i].Ticket, tc.commD, proof.PorepID()), sr.ReplicaID, "sector %d", i)
		require.Len(t, sr.Layers, 2, "the proof's layer count")
		tree, err := os.ReadFile(sr.TreeD)
		require.NoError(t, err)
		require.Len(t, tree, 2*size-32)
		require.Equal(t, tc.commD[:], tree[len(tree)-32:])
		require.Equal(t, uint64(size), log.treeD[i])
		requirePhase1Output(t, proof, sr)
		err = sdr.ReferenceLabels(g, nil, sr.ReplicaID, 2, func(layer int, labels []byte) error {
			got, err := os.ReadFile(sr.Layers[layer-1])
			require.NoError(t, err)
			require.Equal(t, labels, got, "sector %d layer %d", i, layer)
			return nil
		})
		require.NoError(t, err)
	}
	require.NotEqual(t, res.Sectors[0].ReplicaID, res.Sectors[2].ReplicaID, "same data, another miner")
}

// requirePhase1Output checks that the sector's phase-1 output is in its
// cache directory and says what Phase1OutputJSON says for it.
func requirePhase1Output(t *testing.T, proof sdr.Proof, sr SectorResult) {
	t.Helper()
	require.Equal(t, filepath.Join(sr.CacheDir, Phase1OutputFile), sr.Phase1Output)
	got, err := os.ReadFile(sr.Phase1Output)
	require.NoError(t, err)
	want, err := Phase1OutputJSON(Phase1Input{Proof: proof, CommD: sr.CommD, CacheDir: sr.CacheDir, Layers: len(sr.Layers)})
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

// TestSealBatchLayerOverride checks that a batch with another layer count
// than the proof's labels that many layers and writes no phase-1 output,
// which no PC2 would take.
func TestSealBatchLayerOverride(t *testing.T) {
	proof := proofNamed(t, "StackedDrg2KiBV1")
	in := SectorInput{ProverID: ActorProverID(5), SectorNumber: 1, Ticket: ticketOf(9)}
	res, err := SealBatch(context.Background(), Batch{Proof: proof, Layers: 4, Root: t.TempDir(), ParentCacheDir: t.TempDir(), Sectors: []SectorInput{in}})
	require.NoError(t, err)
	sr := res.Sectors[0]
	require.Len(t, sr.Layers, 4)
	require.Empty(t, sr.Phase1Output)
	_, err = os.Stat(filepath.Join(sr.CacheDir, Phase1OutputFile))
	require.ErrorIs(t, err, fs.ErrNotExist)
	g, err := sdr.NewProofGraph(proof)
	require.NoError(t, err)
	require.NoError(t, sdr.ReferenceLabels(g, nil, sr.ReplicaID, 4, func(layer int, labels []byte) error {
		got, err := os.ReadFile(sr.Layers[layer-1])
		require.NoError(t, err)
		require.Equal(t, labels, got, "layer %d", layer)
		return nil
	}))
}

type bytesReaderT struct{ b []byte }

func (r *bytesReaderT) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func bytesReader(b []byte) *bytesReaderT { return &bytesReaderT{b} }

// snapshot lists every file and directory under root with its size.
func snapshot(t *testing.T, root string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = info.Size()
		if d.IsDir() {
			out[p] = -1
		}
		return nil
	}))
	return out
}

// TestSealBatchRefuses checks that bad batches fail with an error naming
// the sector and the problem, and leave the storage root as they found it,
// including those refused only after tree_d was built (a comm_d that is
// not the pieces', a pool size out of bounds).
func TestSealBatchRefuses(t *testing.T) {
	proof := proofNamed(t, "StackedDrg2KiBV1_1")
	cache, src := t.TempDir(), t.TempDir()
	data := fr32Data(5, 2048)
	staged := writeFile(t, src, "staged", data)
	short := writeFile(t, src, "short", data[:2016])
	unpadded := append([]byte(nil), data...)
	unpadded[31] = 0xc0
	raw := writeFile(t, src, "raw", unpadded)
	var wrong [32]byte
	var nonActor ProverID
	nonActor[1] = 1
	a := func(n uint64) SectorInput { return SectorInput{ProverID: ActorProverID(1000), SectorNumber: n} }
	with := func(s SectorInput, f func(*SectorInput)) SectorInput { f(&s); return s }

	for _, tc := range []struct {
		name   string
		batch  Batch
		errMsg string
	}{
		{name: "no proof", batch: Batch{Sectors: []SectorInput{a(1)}}, errMsg: "no proof"},
		{name: "no sectors", batch: Batch{Proof: proof}, errMsg: "no sectors"},
		{name: "hand-made proof", batch: Batch{Proof: sdr.Proof{Name: "StackedDrg4KiBV1_1", ID: 5, SectorSize: 4096, Layers: 2, API: sdr.APIVersion1_1}, Sectors: []SectorInput{a(1)}},
			errMsg: `proof "StackedDrg4KiBV1_1" (id 5) is not a registered seal proof`},
		{name: "bad layers", batch: Batch{Proof: proof, Layers: -1, Sectors: []SectorInput{a(1)}}, errMsg: "layer count -1"},
		{name: "staged missing", batch: Batch{Proof: proof, Sectors: []SectorInput{a(1), with(a(2), func(s *SectorInput) { s.Staged = filepath.Join(src, "nope") })}},
			errMsg: "sector 1 (s-t01000-2): staged file " + filepath.Join(src, "nope") + ": no such file or directory"},
		{name: "staged short", batch: Batch{Proof: proof, Sectors: []SectorInput{with(a(1), func(s *SectorInput) { s.Staged = short })}},
			errMsg: "sector 0 (s-t01000-1): staged file " + short + " is 2016 bytes, want 2048 bytes"},
		{name: "not an actor", batch: Batch{Proof: proof, Sectors: []SectorInput{{ProverID: nonActor, SectorNumber: 3}}},
			errMsg: "is not a miner actor's, so it has no Lotus sector name: give the sector a cache directory"},
		{name: "same sector twice", batch: Batch{Proof: proof, Sectors: []SectorInput{a(1), a(2), a(1)}},
			errMsg: "sector 0 (s-t01000-1) and sector 2 (s-t01000-1) share the cache directory"},
		{name: "unpadded data", batch: Batch{Proof: proof, Sectors: []SectorInput{a(1), with(a(2), func(s *SectorInput) { s.Staged = raw })}},
			errMsg: "sector 1 (s-t01000-2): staged file " + raw + ": node 0 (bytes 0..31) is not Fr32-padded"},
		{name: "comm_d not the pieces'", batch: Batch{Proof: proof, Sectors: []SectorInput{a(1), with(a(2), func(s *SectorInput) { s.Staged, s.WantCommD = staged, &wrong })}},
			errMsg: "sector 1 (s-t01000-2): comm_d of the staged data is"},
		{name: "pool too small", batch: Batch{Proof: proof, Sectors: []SectorInput{a(1)}, Options: labeler.Options{PoolSize: 1024}}, errMsg: "pool size 1.0 KiB is outside"},
		{name: "bad block size", batch: Batch{Proof: proof, Sectors: []SectorInput{a(1)}, Options: labeler.Options{BlockSize: 3072}}, errMsg: "block size 3072"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			before := snapshot(t, root)
			b := tc.batch
			b.Root = root
			b.ParentCacheDir = cache
			_, err := SealBatch(context.Background(), b)
			require.ErrorContains(t, err, tc.errMsg)
			require.Equal(t, before, snapshot(t, root), "the storage root is as it was")
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		root := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := SealBatch(ctx, Batch{Proof: proof, Root: root, ParentCacheDir: cache, Sectors: []SectorInput{with(a(1), func(s *SectorInput) { s.Staged = staged })}})
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, map[string]int64{root: -1}, snapshot(t, root))
	})
}

// TestSealBatchRerunWithOtherData reruns a sealed sector's batch with other
// staged data: a comm_d check that fails leaves the sector as it was; a
// batch that fails later leaves no phase-1 output claiming the old layers
// are the new data's; a good one relabels the sector from scratch.
func TestSealBatchRerunWithOtherData(t *testing.T) {
	ctx := context.Background()
	proof := proofNamed(t, "StackedDrg2KiBV1_1")
	src := t.TempDir()
	dataA, dataB := fr32Data(21, 2048), fr32Data(22, 2048)
	staged := writeFile(t, src, "staged", dataA)
	batch := Batch{Proof: proof, Root: t.TempDir(), ParentCacheDir: t.TempDir(),
		Sectors: []SectorInput{{ProverID: ActorProverID(1000), SectorNumber: 1, Ticket: ticketOf(4), Staged: staged}}}
	first, err := SealBatch(ctx, batch)
	require.NoError(t, err)
	dir := first.Sectors[0].CacheDir
	sealedA := snapshot(t, dir)
	treeA, err := os.ReadFile(first.Sectors[0].TreeD)
	require.NoError(t, err)

	writeFile(t, src, "staged", dataB)
	wrong := first.Sectors[0].CommD // the old data's
	refused := batch
	refused.Sectors = []SectorInput{batch.Sectors[0]}
	refused.Sectors[0].WantCommD = &wrong
	_, err = SealBatch(ctx, refused)
	require.ErrorContains(t, err, "comm_d of the staged data is")
	require.Equal(t, sealedA, snapshot(t, dir))
	tree, err := os.ReadFile(first.Sectors[0].TreeD)
	require.NoError(t, err)
	require.Equal(t, treeA, tree, "tree_d untouched")

	// A batch the labeler would refuse is refused before anything is
	// written: the sector stays as the first batch left it.
	failing := batch
	failing.PoolSize = 1024
	_, err = SealBatch(ctx, failing)
	require.ErrorContains(t, err, "pool size")
	require.Equal(t, sealedA, snapshot(t, dir))

	again, err := SealBatch(ctx, batch)
	require.NoError(t, err)
	sr := again.Sectors[0]
	commB, err := sdr.CommD(bytesReader(dataB), 64)
	require.NoError(t, err)
	require.Equal(t, commB, sr.CommD)
	require.NotEqual(t, first.Sectors[0].ReplicaID, sr.ReplicaID)
	require.Contains(t, again.Report.Warnings[0], "labeling it from the start")
	requirePhase1Output(t, proof, sr)
	g, err := sdr.NewProofGraph(proof)
	require.NoError(t, err)
	require.NoError(t, sdr.ReferenceLabels(g, nil, sr.ReplicaID, 2, func(layer int, labels []byte) error {
		got, err := os.ReadFile(sr.Layers[layer-1])
		require.NoError(t, err)
		require.Equal(t, labels, got, "layer %d", layer)
		return nil
	}))
}
