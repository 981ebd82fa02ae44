package sealer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"unicode/utf8"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// Phase1OutputFile is the file WritePhase1Output writes in a sector's cache
// directory. Neither Lotus nor Curio reads the PreCommit1 output from a fixed
// file: Lotus keeps it in its sector state (storiface.PreCommit1Out, a
// []byte), lotus-bench passes it base64 on the command line and in
// EXTSEAL_PC2_PC1OUT (filecoin-project/lotus cmd/lotus-bench/simple.go), and
// Curio rebuilds it in memory before PC2 (filecoin-project/curio
// lib/ffi/sdr_funcs.go, makePhase1Out). The name follows lotus-bench's
// "c1out.json" for the commit-phase-1 output; it stays clear of the
// reference's "sc-02-data-*" store files and of p_aux/t_aux, which PC2
// creates in the same directory.
const Phase1OutputFile = "pc1out.json"

// Phase1Input is what the PreCommit1 output records about a labelled sector.
type Phase1Input struct {
	// Proof is the sector's registered seal proof.
	Proof sdr.Proof
	// CommD is the root of tree_d, as sdr.CommD computes it.
	CommD [32]byte
	// CacheDir is the sector's cache directory, holding the layer files and
	// tree_d. PC2 replaces it with the cache directory it is handed, so it
	// only has to be valid UTF-8, as the reference's PathBuf serialisation
	// demands.
	CacheDir string
	// Layers is the number of label layers written; 0 means the proof's.
	Layers int
}

// WritePhase1Output writes the PreCommit1 output JSON, byte for byte what
// rust-fil-proofs returns through filecoin-ffi, to dir/pc1out.json,
// atomically.
func WritePhase1Output(dir string, in Phase1Input) error {
	data, err := Phase1OutputJSON(in)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, Phase1OutputFile)
	if err := blockio.WriteFileAtomic(path, data); err != nil {
		return fmt.Errorf("phase-1 output for %s: %w", in.Proof.Name, err)
	}
	return nil
}

// Phase1OutputJSON returns the PreCommit1 output exactly as filecoin-ffi
// hands it to Lotus: serde_json::to_vec of filecoin-proofs-api's
// SealPreCommitPhase1Output (filecoin-project/filecoin-ffi
// rust/src/proofs/api.rs, seal_pre_commit_phase1), compact, fields in
// declaration order, no trailing newline.
//
// The shape, field by field, with where each fact comes from:
//
//   - The struct is {registered_proof, labels, config, comm_d}, in that
//     order (filecoin-project/rust-filecoin-proofs-api src/seal.rs,
//     SealPreCommitPhase1Output).
//   - registered_proof is a unit variant of a plain #[derive(Serialize)]
//     enum, so serde writes its name as a string: "StackedDrg32GiBV1_1"
//     (rust-filecoin-proofs-api src/registry.rs, RegisteredSealProof).
//   - labels is the externally tagged enum Labels, whose variant is named by
//     sector size alone, "StackedDrg32GiBV1" for every API version and
//     feature of that size (rust-filecoin-proofs-api src/seal.rs,
//     Labels::from_raw; Curio keys it the same way in makePhase1Out). Its
//     content is storage-proofs-porep's Labels {labels: Vec<StoreConfig>,
//     _h: PhantomData}, and serde writes a PhantomData as null
//     (filecoin-project/rust-fil-proofs
//     storage-proofs-porep/src/stacked/vanilla/params.rs).
//   - A StoreConfig is {path, id, size, rows_to_discard}, size an
//     Option<usize> (filecoin-project/merkletree src/store/mod.rs).
//   - config is tree_d's StoreConfig: id "tree-d" (rust-fil-proofs
//     storage-proofs-core/src/cache_key.rs, CacheKey::CommDTree), path the
//     cache directory, size data_tree.len(), the 2n-1 nodes of the whole
//     binary tree (rust-fil-proofs filecoin-proofs/src/api/seal.rs,
//     seal_pre_commit_phase1; Curio writes 127 for 2 KiB and 2147483647 for
//     32 GiB).
//   - Layer k's StoreConfig is StoreConfig::from_config(tree_d config,
//     "layer-k", Some(nodes)): tree_d's path and rows_to_discard, id from
//     CacheKey::label_layer, size the layer's node count
//     (rust-fil-proofs storage-proofs-porep/src/stacked/vanilla/proof.rs,
//     generate_labels_for_encoding; Curio writes 64 for 2 KiB and 1073741824
//     for 32 GiB).
//   - rows_to_discard is 0 everywhere: rust-fil-proofs keeps every row of
//     tree_d and the layers and discards rows of tree_r_last only
//     (rust-fil-proofs pull request 1724, "hard-code rows to discard";
//     TemporaryAux::new in storage-proofs-porep params.rs; Curio's
//     makePhase1Out and lib/proof/t_aux_gen.go write 0).
//   - comm_d is a [u8; 32], which serde writes as an array of 32 numbers
//     (rust-fil-proofs filecoin-proofs/src/types, Commitment).
func Phase1OutputJSON(in Phase1Input) ([]byte, error) {
	layers, err := in.check()
	if err != nil {
		return nil, err
	}
	nodes := in.Proof.Nodes()

	var b bytes.Buffer
	b.WriteString(`{"registered_proof":`)
	writeSerdeString(&b, in.Proof.Name)
	b.WriteString(`,"labels":{`)
	writeSerdeString(&b, "StackedDrg"+sdr.FormatSize(in.Proof.SectorSize)+"V1")
	b.WriteString(`:{"labels":[`)
	for k := 1; k <= layers; k++ {
		if k > 1 {
			b.WriteByte(',')
		}
		writeStoreConfig(&b, in.CacheDir, "layer-"+strconv.Itoa(k), nodes)
	}
	b.WriteString(`],"_h":null}},"config":`)
	writeStoreConfig(&b, in.CacheDir, "tree-d", 2*nodes-1)
	b.WriteString(`,"comm_d":[`)
	for i, c := range in.CommD {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(c)))
	}
	b.WriteString(`]}`)
	return b.Bytes(), nil
}

// lotusTicketKey is the key Lotus adds to the PreCommit1 output to carry the
// ticket from PC1 to PC2 (filecoin-project/lotus
// storage/sealer/ffiwrapper/sealer_cgo.go, SealPreCommit1 and
// SealPreCommit2).
const lotusTicketKey = "_lotus_SealRandomness"

// LotusPreCommit1Out returns the bytes Lotus stores as
// storiface.PreCommit1Out and hands to PC2: the phase-1 JSON decoded into a
// map[string]interface{}, the ticket added under "_lotus_SealRandomness",
// and the map encoded again with encoding/json (Lotus
// storage/sealer/ffiwrapper/sealer_cgo.go, SealPreCommit1). Going through the
// same generic map gives the same bytes: keys sorted at every level, numbers
// as float64 (exact for every size a sector has), strings HTML-escaped, and
// the ticket, an abi.SealRandomness ([]byte), as standard padded base64,
// which is how SealPreCommit2 decodes it again. The Rust side ignores the
// extra key (serde without deny_unknown_fields).
func LotusPreCommit1Out(in Phase1Input, ticket [32]byte) ([]byte, error) {
	raw, err := Phase1OutputJSON(in)
	if err != nil {
		return nil, err
	}
	doc := map[string]interface{}{}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("phase-1 output for %s: decoding our own JSON: %w", in.Proof.Name, err)
	}
	doc[lotusTicketKey] = ticket[:]
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("phase-1 output for %s: encoding the Lotus form: %w", in.Proof.Name, err)
	}
	return out, nil
}

// check validates the input against what PC2 accepts and returns the layer
// count to record.
func (in Phase1Input) check() (int, error) {
	p, err := sdr.ProofByID(in.Proof.ID)
	if err != nil {
		return 0, fmt.Errorf("phase-1 output: %w", err)
	}
	if p.Name != in.Proof.Name || p.SectorSize != in.Proof.SectorSize {
		return 0, fmt.Errorf("phase-1 output: proof %q (id %d, %s) is not a registered seal proof: id %d is %s (%s)",
			in.Proof.Name, in.Proof.ID, sdr.FormatSize(in.Proof.SectorSize), p.ID, p.Name, sdr.FormatSize(p.SectorSize))
	}
	layers := in.Layers
	if layers == 0 {
		layers = p.Layers
	}
	// PC2 opens one store per layer of the proof and no other count; a file
	// it would reject is worse than no file.
	if layers != p.Layers {
		return 0, fmt.Errorf("phase-1 output for %s: %d label layers, but the proof has %d and PC2 reads exactly that many",
			p.Name, in.Layers, p.Layers)
	}
	if in.CacheDir == "" {
		return 0, fmt.Errorf("phase-1 output for %s: no cache directory", p.Name)
	}
	if !utf8.ValidString(in.CacheDir) {
		return 0, fmt.Errorf("phase-1 output for %s: cache directory %q is not valid UTF-8, which the reference cannot serialise", p.Name, in.CacheDir)
	}
	// PC2 reads comm_d back as a BLS12-381 field element; a root from tree_d
	// always is one, so anything else is a corrupted value.
	if in.CommD[31]&0xc0 != 0 {
		return 0, fmt.Errorf("phase-1 output for %s: comm_d %x is not a tree_d root (top two bits of its last byte are set)", p.Name, in.CommD)
	}
	return layers, nil
}

// writeStoreConfig writes a merkletree StoreConfig in field order with
// rows_to_discard 0.
func writeStoreConfig(b *bytes.Buffer, path, id string, size uint64) {
	b.WriteString(`{"path":`)
	writeSerdeString(b, path)
	b.WriteString(`,"id":`)
	writeSerdeString(b, id)
	b.WriteString(`,"size":`)
	b.WriteString(strconv.FormatUint(size, 10))
	b.WriteString(`,"rows_to_discard":0}`)
}

// writeSerdeString writes s as serde_json's compact formatter does, which
// differs from encoding/json: only '"', '\\' and control characters are
// escaped (\b \f \n \r \t short, the others \u00xx in lower-case hex), and
// '<', '>', '&', U+2028 and U+2029 are written as they are.
func writeSerdeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}
