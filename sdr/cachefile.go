package sdr

import (
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
)

// ParentCacheBytesPerNode is the size of one node's entry in a parent cache
// file: its Degree parents as little-endian u32s.
const ParentCacheBytesPerNode = Degree * 4

// parentCacheManifestJSON is rust-fil-proofs' parent cache manifest
// (parent-cache.json): the digest of every production cache file.
//
//go:embed manifest/parent_cache.json
var parentCacheManifestJSON []byte

// ManifestEntry is one production parent cache as the manifest records it.
type ManifestEntry struct {
	SectorSize uint64
	Digest     [32]byte
}

// parsedManifest is the embedded manifest decoded once; the embedded file is
// part of the program, so failing to decode it is a build defect.
var parsedManifest = sync.OnceValue(func() map[string]ManifestEntry {
	var raw map[string]struct {
		SectorSize uint64 `json:"sector_size"`
		Digest     string `json:"digest"`
	}
	if err := json.Unmarshal(parentCacheManifestJSON, &raw); err != nil {
		panic(fmt.Sprintf("sdr: embedded parent cache manifest: %v", err))
	}
	m := make(map[string]ManifestEntry, len(raw))
	for name, e := range raw {
		d, err := hex.DecodeString(e.Digest)
		if err != nil || len(d) != 32 {
			panic(fmt.Sprintf("sdr: embedded parent cache manifest: bad digest for %s", name))
		}
		m[name] = ManifestEntry{SectorSize: e.SectorSize, Digest: [32]byte(d)}
	}
	return m
})

// ParentCacheManifest looks up a cache file name (without directory or the
// .cache suffix) in the embedded manifest.
func ParentCacheManifest(name string) (ManifestEntry, bool) {
	e, ok := parsedManifest()[name]
	return e, ok
}

// ParentCacheID identifies g's parent cache the way rust-fil-proofs names
// it: SHA-256 over the hasher name, the graph's debug identifier, the
// Feistel keys and the node count. Reproducing it lets us reuse caches the
// reference wrote and lets it reuse ours.
func ParentCacheID(g *Graph) [32]byte {
	h := sha256.New()
	h.Write([]byte("poseidon_hasher"))
	fmt.Fprintf(h, "stacked_graph::StackedGraph{expansion_degree: %d base_graph: drgraph::BucketGraph{size: %d; degree: %d; hasher: poseidon_hasher} }",
		ExpanderDegree, g.nodes, BaseDegree)
	var b [8]byte
	for _, k := range g.feistelKeys {
		binary.LittleEndian.PutUint64(b[:], k)
		h.Write(b[:])
	}
	binary.LittleEndian.PutUint32(b[:4], uint32(g.nodes))
	h.Write(b[:4])
	var id [32]byte
	h.Sum(id[:0])
	return id
}

// ParentCacheName is the manifest key of g's parent cache:
// v28-sdr-parent-<id hex>.
func ParentCacheName(g *Graph) string {
	id := ParentCacheID(g)
	return "v28-sdr-parent-" + hex.EncodeToString(id[:])
}

// ParentCacheFileName is the file name of g's parent cache.
func ParentCacheFileName(g *Graph) string { return ParentCacheName(g) + ".cache" }

// GenerateParents fills dst, a whole number of ParentCacheBytesPerNode
// entries, with the parents of consecutive nodes from first, in the parent
// cache's format.
func GenerateParents(g *Graph, first uint64, dst []byte) {
	var ps [Degree]uint32
	for off := 0; off+ParentCacheBytesPerNode <= len(dst); off += ParentCacheBytesPerNode {
		g.Parents(first, &ps)
		e := dst[off : off+ParentCacheBytesPerNode]
		for i, p := range ps {
			binary.LittleEndian.PutUint32(e[4*i:], p)
		}
		first++
	}
}
