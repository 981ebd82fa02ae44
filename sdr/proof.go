package sdr

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// APIVersion is the rust-fil-proofs API version a proof uses. It changes
// where the predecessor sits among the base parents and how expander parents
// are truncated.
type APIVersion int

const (
	// APIVersion1_0 puts the predecessor in base slot 5 and truncates
	// permuted expander indices to 32 bits before dividing.
	APIVersion1_0 APIVersion = iota
	// APIVersion1_1 puts the predecessor in base slot 0 and divides the full
	// 64-bit permuted index.
	APIVersion1_1
	// APIVersion1_2 builds the graph exactly as 1.1.0 does.
	APIVersion1_2
)

func (v APIVersion) String() string {
	switch v {
	case APIVersion1_0:
		return "1.0.0"
	case APIVersion1_1:
		return "1.1.0"
	case APIVersion1_2:
		return "1.2.0"
	}
	return fmt.Sprintf("APIVersion(%d)", int(v))
}

// ParseAPIVersion accepts "1.0.0", "1.1.0" and "1.2.0" (and the short
// forms "1.0", "1.1", "1.2").
func ParseAPIVersion(s string) (APIVersion, error) {
	switch strings.TrimSpace(s) {
	case "1.0.0", "1.0":
		return APIVersion1_0, nil
	case "1.1.0", "1.1":
		return APIVersion1_1, nil
	case "1.2.0", "1.2":
		return APIVersion1_2, nil
	}
	return 0, fmt.Errorf("unknown API version %q: use 1.0.0, 1.1.0 or 1.2.0", s)
}

// Proof is a registered StackedDrg seal proof.
type Proof struct {
	// Name is the reference's RegisteredSealProof name, e.g. StackedDrg32GiBV1_1.
	Name string
	// ID is the registered-proof number; it is the first 8 bytes of the porep id.
	ID uint64
	// SectorSize is in bytes.
	SectorSize uint64
	// Layers is the production layer count.
	Layers int
	// API is the graph's API version.
	API APIVersion
}

// Nodes is the number of 32-byte nodes in one layer of the proof's sector.
func (p Proof) Nodes() uint64 { return p.SectorSize / NodeSize }

// PorepID is the proof's 32-byte porep id: the registered-proof number and
// a zero nonce, both u64 little-endian, then zeros.
func (p Proof) PorepID() [32]byte {
	var id [32]byte
	binary.LittleEndian.PutUint64(id[0:8], p.ID)
	binary.LittleEndian.PutUint64(id[8:16], 0)
	return id
}

const (
	kib = uint64(1) << 10
	mib = uint64(1) << 20
	gib = uint64(1) << 30
)

// proofSizes is the size order the registered-proof numbers follow within
// each family.
var proofSizes = [...]struct {
	name   string
	size   uint64
	layers int
}{
	{"2KiB", 2 * kib, 2},
	{"8MiB", 8 * mib, 2},
	{"512MiB", 512 * mib, 2},
	{"32GiB", 32 * gib, 11},
	{"64GiB", 64 * gib, 11},
}

// proofFamilies lists the StackedDrg families in registered-proof order:
// family f, size s has ID 5f+s.
var proofFamilies = [...]struct {
	suffix string
	api    APIVersion
}{
	{"V1", APIVersion1_0},
	{"V1_1", APIVersion1_1},
	{"V1_1_Feat_SyntheticPoRep", APIVersion1_2},
	{"V1_2_Feat_NonInteractivePoRep", APIVersion1_2},
}

// Proofs lists every registered StackedDrg seal proof in ID order.
func Proofs() []Proof {
	out := make([]Proof, 0, len(proofFamilies)*len(proofSizes))
	for f, fam := range proofFamilies {
		for s, sz := range proofSizes {
			out = append(out, Proof{
				Name:       "StackedDrg" + sz.name + fam.suffix,
				ID:         uint64(f*len(proofSizes) + s),
				SectorSize: sz.size,
				Layers:     sz.layers,
				API:        fam.api,
			})
		}
	}
	return out
}

// ProofByName finds a registered proof by its reference name, ignoring case
// and an optional "RegisteredSealProof_" prefix (the go-state-types
// spelling). "NiPoRep" is accepted for "NonInteractivePoRep".
func ProofByName(name string) (Proof, error) {
	want := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(name), "RegisteredSealProof_"))
	want = strings.Replace(want, "_feat_niporep", "_feat_noninteractiveporep", 1)
	for _, p := range Proofs() {
		if strings.ToLower(p.Name) == want {
			return p, nil
		}
	}
	return Proof{}, fmt.Errorf("unknown proof %q: use a StackedDrg seal proof name such as StackedDrg32GiBV1_1 (sizes 2KiB, 8MiB, 512MiB, 32GiB, 64GiB; versions V1, V1_1)", name)
}

// ProofByID finds a registered proof by its number.
func ProofByID(id uint64) (Proof, error) {
	ps := Proofs()
	if id >= uint64(len(ps)) {
		return Proof{}, fmt.Errorf("unknown registered seal proof %d: known ids are 0..%d", id, len(ps)-1)
	}
	return ps[id], nil
}
