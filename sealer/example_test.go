package sealer_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/pc1-tiered/pc1-tiered/sealer"
)

// Seal one committed-capacity 2 KiB sector of miner f01000 from its real
// inputs: the cache directory, comm_d (the all-zero sector's, as the chain
// knows it) and the files PC2 reads.
func Example() {
	root, err := os.MkdirTemp("", "sealer-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)

	proof, err := sdr.ProofByName("StackedDrg2KiBV1_1")
	if err != nil {
		log.Fatal(err)
	}
	miner, err := sealer.ParseProverID("f01000")
	if err != nil {
		log.Fatal(err)
	}
	var ticket [32]byte // from the chain, for this sector
	res, err := sealer.SealBatch(context.Background(), sealer.Batch{
		Proof:          proof,
		Root:           root,
		Sectors:        []sealer.SectorInput{{ProverID: miner, SectorNumber: 1, Ticket: ticket}},
		ParentCacheDir: filepath.Join(root, "parents"), // default: $FIL_PROOFS_PARENT_CACHE
	})
	if err != nil {
		log.Fatal(err)
	}
	s := res.Sectors[0]
	rel := func(p string) string { r, _ := filepath.Rel(root, p); return r }
	fmt.Println("cache:  ", rel(s.CacheDir))
	fmt.Printf("comm_d:  %x\n", s.CommD)
	fmt.Printf("replica: %x\n", s.ReplicaID)
	fmt.Println("tree_d: ", filepath.Base(s.TreeD))
	for _, l := range s.Layers {
		fmt.Println("layer:  ", filepath.Base(l))
	}
	fmt.Println("pc1 out:", filepath.Base(s.Phase1Output))
	// Output:
	// cache:   cache/s-t01000-1
	// comm_d:  fc7e928296e516faade986b28f92d44a4f24b935485223376a799027bc18f833
	// replica: 2940faa406e4c6cbad015e2b08e76fd9e3b0e5b852cea7f8174c02ba33039a01
	// tree_d:  sc-02-data-tree-d.dat
	// layer:   sc-02-data-layer-1.dat
	// layer:   sc-02-data-layer-2.dat
	// pc1 out: pc1out.json
}

// A miner's prover id is its actor id as a LEB128 varint, zero-padded:
// f01000 and t01000 are the same prover.
func ExampleParseProverID() {
	for _, s := range []string{"f01000", "t01000", "e807000000000000000000000000000000000000000000000000000000000000", "f1abc"} {
		p, err := sealer.ParseProverID(s)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		actor, _ := p.Actor()
		fmt.Printf("%s: %x.. actor %d\n", p, p[:4], actor)
	}
	// Output:
	// f01000: e8070000.. actor 1000
	// f01000: e8070000.. actor 1000
	// f01000: e8070000.. actor 1000
	// error: prover id "f1abc": only id addresses (f0<id> or t0<id>) name a miner; look the miner's id address up (lotus state lookup)
}

// Sectors live where Lotus and Curio look for them.
func ExampleSectorName() {
	fmt.Println(filepath.Join("/seal", sealer.CacheDirName, sealer.SectorName(1000, 7)))
	// Output: /seal/cache/s-t01000-7
}

// Replace filecoin-ffi's GenerateSDR in a sealing task that already has
// the sector's replica id and cache directory (Curio's SDR task): the
// layer files come out byte-identical to rust-fil-proofs'.
func ExampleGenerateSDR() {
	root, err := os.MkdirTemp("", "sealer-sdr-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)

	proof, err := sdr.ProofByName("StackedDrg2KiBV1_1")
	if err != nil {
		log.Fatal(err)
	}
	var replicaID [32]byte // sector.ProofType.ReplicaId(miner, number, ticket, commD) in Curio
	replicaID[0] = 1
	cache := filepath.Join(root, "cache", "s-t01000-1")
	// was: ffi.GenerateSDR(sector.ProofType, paths.Cache, replicaID)
	rep, err := sealer.GenerateSDR(context.Background(), proof, cache, replicaID,
		sealer.LabelOptions{ParentCacheDir: filepath.Join(root, "parents")})
	if err != nil {
		log.Fatal(err)
	}
	for k := 1; k <= proof.Layers; k++ {
		st, err := os.Stat(filepath.Join(cache, sdr.LayerFileName(k)))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(st.Name(), st.Size())
	}
	fmt.Println("labels:", rep.Sectors[0].Nodes)
	// Output:
	// sc-02-data-layer-1.dat 2048
	// sc-02-data-layer-2.dat 2048
	// labels: 128
}
