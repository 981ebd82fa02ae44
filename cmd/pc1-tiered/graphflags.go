package main

import (
	"flag"
	"fmt"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// defaultProof is what seal and parents use when given no graph flags: the
// smallest production proof whose sector exercises every part of the
// pipeline (2^18 nodes, a 14 MiB parent cache).
const defaultProof = "StackedDrg8MiBV1_1"

// graphFlags selects a graph: a registered proof by name, or a sector size
// with an optional raw porep id and API version.
type graphFlags struct {
	proof, sectorSize, porepID, apiVersion string
}

func (g *graphFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.proof, "proof", "", "registered seal proof, e.g. StackedDrg32GiBV1_1 (default "+defaultProof+")")
	fs.StringVar(&g.sectorSize, "sector-size", "", "sector size: 2KiB, 8MiB, 32GiB or bytes; any power of two from 2KiB with --porep-id")
	fs.StringVar(&g.porepID, "porep-id", "", "raw 32-byte porep id in hex (instead of --proof)")
	fs.StringVar(&g.apiVersion, "api-version", "", "graph API version with --porep-id or --sector-size: 1.0.0, 1.1.0 (default) or 1.2.0")
}

// graphSpec is a resolved graph and what a person should see of it.
type graphSpec struct {
	graph *sdr.Graph
	// proof is the registered proof's name, or "" for a raw porep id.
	proof string
	// layers is the production layer count, or 2 for sizes no proof has.
	layers int
}

func (g *graphFlags) resolve() (graphSpec, error) {
	var size uint64
	if g.sectorSize != "" {
		s, err := sdr.ParseSize(g.sectorSize)
		if err != nil {
			return graphSpec{}, usagef("--sector-size: %v", err)
		}
		if err := sdr.CheckSectorSize(s); err != nil {
			return graphSpec{}, usagef("--sector-size %q: %v", g.sectorSize, err)
		}
		size = s
	}
	api := sdr.APIVersion1_1
	if g.apiVersion != "" {
		v, err := sdr.ParseAPIVersion(g.apiVersion)
		if err != nil {
			return graphSpec{}, usagef("--api-version: %v", err)
		}
		api = v
	}
	switch {
	case g.proof != "" && g.porepID != "":
		return graphSpec{}, usagef("--proof and --porep-id both given: use one")
	case g.proof != "" && g.apiVersion != "":
		return graphSpec{}, usagef("--proof fixes the API version: drop --api-version")
	case g.porepID != "":
		if size == 0 {
			return graphSpec{}, usagef("--porep-id needs --sector-size")
		}
		id, err := sdr.ParseHex32(g.porepID)
		if err != nil {
			return graphSpec{}, usagef("--porep-id: %v", err)
		}
		graph, err := sdr.NewGraph(size, id, api)
		if err != nil {
			return graphSpec{}, usagef("%v", err)
		}
		return graphSpec{graph: graph, layers: layersFor(size)}, nil
	}
	name := g.proof
	if name == "" && size != 0 {
		// A bare size picks the registered proof of that size and API
		// version; sizes no proof has get the all-zero porep id.
		p, ok := proofFor(size, api)
		if !ok {
			graph, err := sdr.NewGraph(size, [32]byte{}, api)
			if err != nil {
				return graphSpec{}, usagef("%v", err)
			}
			return graphSpec{graph: graph, layers: layersFor(size)}, nil
		}
		name = p.Name
	}
	if name == "" {
		name = defaultProof
	}
	p, err := sdr.ProofByName(name)
	if err != nil {
		return graphSpec{}, usagef("--proof: %v", err)
	}
	if size != 0 && size != p.SectorSize {
		return graphSpec{}, usagef("--sector-size %q does not match %s (%s); for other sizes use --porep-id", g.sectorSize, p.Name, sdr.FormatSize(p.SectorSize))
	}
	graph, err := sdr.NewProofGraph(p)
	if err != nil {
		return graphSpec{}, err
	}
	return graphSpec{graph: graph, proof: p.Name, layers: p.Layers}, nil
}

func proofFor(size uint64, api sdr.APIVersion) (sdr.Proof, bool) {
	for _, p := range sdr.Proofs() {
		if p.SectorSize == size && p.API == api {
			return p, true
		}
	}
	return sdr.Proof{}, false
}

func layersFor(size uint64) int {
	for _, p := range sdr.Proofs() {
		if p.SectorSize == size {
			return p.Layers
		}
	}
	return 2
}

func (s graphSpec) String() string {
	if s.proof != "" {
		return s.proof
	}
	id := s.graph.PorepID()
	return fmt.Sprintf("%s sector, porep id %x, API %s", sdr.FormatSize(s.graph.SectorSize()), id[:], s.graph.API())
}

// parentCacheDir is the --cache-dir flag's value, or where rust-fil-proofs
// keeps parent caches ($FIL_PROOFS_PARENT_CACHE, else
// /var/tmp/filecoin-parents) when it is empty.
func parentCacheDir(e *env, flag string) string {
	if flag != "" {
		return flag
	}
	return blockio.DefaultParentCacheDir(e.getenv)
}
