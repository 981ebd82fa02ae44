package blockio

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"golang.org/x/sys/unix"
)

// SectorMetaFile is the name of the metadata file in a sector's directory.
const SectorMetaFile = "pc1-tiered.json"

// SectorMetaVersion is the metadata format this program writes. ReadSectorMeta
// refuses newer versions rather than guess what their fields mean.
const SectorMetaVersion = 1

// SectorMeta is what a sector's directory must say about itself so that its
// layer files can be checked, or labeling resumed, without the original
// command line: the replica id and the graph its labels were computed for.
type SectorMeta struct {
	ReplicaID  [32]byte
	SectorSize uint64
	PorepID    [32]byte
	API        sdr.APIVersion
	// Layers is the number of layers the sector's seal computes.
	Layers int
	// LayerChecksums[k-1], when present and not empty, is a checksum of
	// layer k's committed file. Nothing fills it yet; a resume feature will
	// record each layer as it commits, so the field is kept (and preserved by
	// Read and Write) now to keep the format stable.
	LayerChecksums []string
}

// NewSectorMeta describes a sector of graph g with the given replica id and
// layer count.
func NewSectorMeta(g *sdr.Graph, replicaID [32]byte, layers int) SectorMeta {
	return SectorMeta{
		ReplicaID:  replicaID,
		SectorSize: g.SectorSize(),
		PorepID:    g.PorepID(),
		API:        g.API(),
		Layers:     layers,
	}
}

// sectorMetaJSON is the file's layout: ids in hex, the API version as the
// reference spells it.
type sectorMetaJSON struct {
	Version        int      `json:"version"`
	ReplicaID      string   `json:"replica_id"`
	SectorSize     uint64   `json:"sector_size"`
	PorepID        string   `json:"porep_id"`
	APIVersion     string   `json:"api_version"`
	Layers         int      `json:"layers"`
	LayerChecksums []string `json:"layer_checksums,omitempty"`
}

// SectorMetaPath is the metadata file of the sector whose directory is dir.
func SectorMetaPath(dir string) string { return SectorDir(dir).Meta() }

// WriteSectorMeta writes m to dir's metadata file atomically: a reader sees
// the previous metadata or the new one, never a torn file.
func WriteSectorMeta(dir string, m SectorMeta, opts ...FileOption) error {
	path := SectorMetaPath(dir)
	if err := m.check(); err != nil {
		return fmt.Errorf("sector metadata %s: %w", path, err)
	}
	data, err := json.MarshalIndent(sectorMetaJSON{
		Version:        SectorMetaVersion,
		ReplicaID:      hex.EncodeToString(m.ReplicaID[:]),
		SectorSize:     m.SectorSize,
		PorepID:        hex.EncodeToString(m.PorepID[:]),
		APIVersion:     m.API.String(),
		Layers:         m.Layers,
		LayerChecksums: m.LayerChecksums,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("sector metadata %s: %w", path, err)
	}
	return WriteFileAtomic(path, append(data, '\n'), opts...)
}

// ReadSectorMeta reads and checks dir's metadata file. Every error names
// the file.
func ReadSectorMeta(dir string) (SectorMeta, error) {
	path := SectorMetaPath(dir)
	data, err := os.ReadFile(path)
	if err != nil {
		return SectorMeta{}, fmt.Errorf("sector metadata: %w", err)
	}
	m, err := parseSectorMeta(data)
	if err != nil {
		return SectorMeta{}, fmt.Errorf("sector metadata %s: %w", path, err)
	}
	return m, nil
}

func parseSectorMeta(data []byte) (SectorMeta, error) {
	var raw sectorMetaJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return SectorMeta{}, err
	}
	if raw.Version < 1 || raw.Version > SectorMetaVersion {
		return SectorMeta{}, fmt.Errorf("format version %d: this pc1-tiered reads version %d", raw.Version, SectorMetaVersion)
	}
	m := SectorMeta{SectorSize: raw.SectorSize, Layers: raw.Layers, LayerChecksums: raw.LayerChecksums}
	var err error
	if m.ReplicaID, err = sdr.ParseHex32(raw.ReplicaID); err != nil {
		return SectorMeta{}, fmt.Errorf("replica_id: %w", err)
	}
	if m.PorepID, err = sdr.ParseHex32(raw.PorepID); err != nil {
		return SectorMeta{}, fmt.Errorf("porep_id: %w", err)
	}
	if m.API, err = sdr.ParseAPIVersion(raw.APIVersion); err != nil {
		return SectorMeta{}, fmt.Errorf("api_version: %w", err)
	}
	if err := m.check(); err != nil {
		return SectorMeta{}, err
	}
	return m, nil
}

func (m SectorMeta) check() error {
	if err := sdr.CheckSectorSize(m.SectorSize); err != nil {
		return fmt.Errorf("sector_size: %w", err)
	}
	if m.API < sdr.APIVersion1_0 || m.API > sdr.APIVersion1_2 {
		return fmt.Errorf("api_version: unknown API version %d", int(m.API))
	}
	if m.Layers < 1 {
		return fmt.Errorf("layers %d: must be at least 1", m.Layers)
	}
	if len(m.LayerChecksums) > m.Layers {
		return fmt.Errorf("%d layer checksums for %d layers", len(m.LayerChecksums), m.Layers)
	}
	return nil
}

// Graph builds the graph the sector was labeled with.
func (m SectorMeta) Graph() (*sdr.Graph, error) {
	return sdr.NewGraph(m.SectorSize, m.PorepID, m.API)
}

// SectorDirs lists the sectors under root: root itself when it holds a
// metadata file, else its sector-<i> subdirectories in index order. It is
// an error, naming root, when there are none.
func SectorDirs(root string) ([]string, error) {
	if _, err := os.Stat(SectorMetaPath(root)); err == nil {
		return []string{root}, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("sector directories: %w", err)
	}
	type sector struct {
		idx int
		dir string
	}
	var found []sector
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "sector-")
		if !ok || !e.IsDir() {
			continue
		}
		idx, err := strconv.Atoi(rest)
		if err != nil || idx < 0 {
			continue
		}
		found = append(found, sector{idx, filepath.Join(root, e.Name())})
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%s holds no sector: neither %s nor sector-<i> directories", root, SectorMetaFile)
	}
	slices.SortFunc(found, func(a, b sector) int { return a.idx - b.idx })
	dirs := make([]string, len(found))
	for i, s := range found {
		dirs[i] = s.dir
	}
	return dirs, nil
}

// LayerReader reads labels from a committed layer file at any offset, for
// checks that look at a few nodes of a large layer without loading it, or
// (uncached) for labels read into DRAM blocks.
type LayerReader struct {
	path string
	f    *os.File
	// uncached drops what each read brought into the page cache.
	uncached bool
}

// OpenLayer opens layer (from 1) in the sector directory dir, failing with
// the file's name when it is missing or not exactly size bytes long: a
// layer file of any other size is not one PC2 may trust.
func OpenLayer(dir string, layer int, size uint64) (*LayerReader, error) {
	return openLayer(SectorDir(dir).Layer(layer), size, false)
}

// OpenLayerUncached opens the committed layer file at path as OpenLayer
// does, for reads into DRAM blocks (a resumed job's previous layer, a
// spilling job's promotions) that leave nothing in the page cache: those
// labels then live in the arena only, not twice. Kernel read-ahead is off,
// since read-ahead past each block would stay cached.
func OpenLayerUncached(path string, size uint64) (*LayerReader, error) {
	r, err := openLayer(path, size, true)
	if err == nil {
		_ = unix.Fadvise(int(r.f.Fd()), 0, 0, unix.FADV_RANDOM)
	}
	return r, err
}

func openLayer(path string, size uint64, uncached bool) (*LayerReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("layer file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("layer file %s: %w", path, err)
	}
	if st.Size() != int64(size) {
		f.Close()
		return nil, fmt.Errorf("layer file %s is %d bytes, want %d", path, st.Size(), size)
	}
	return &LayerReader{path: path, f: f, uncached: uncached}, nil
}

// Path is the layer file's name.
func (r *LayerReader) Path() string { return r.path }

// ReadAt fills p from offset off. A short read is an error naming the file
// and offset.
func (r *LayerReader) ReadAt(p []byte, off int64) error {
	if _, err := r.f.ReadAt(p, off); err != nil {
		return fmt.Errorf("reading %d bytes at offset %d of %s: %w", len(p), off, r.path, err)
	}
	if r.uncached {
		_ = unix.Fadvise(int(r.f.Fd()), off, int64(len(p)), unix.FADV_DONTNEED)
	}
	return nil
}

// Close closes the file.
func (r *LayerReader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("closing %s: %w", r.path, err)
	}
	return nil
}
