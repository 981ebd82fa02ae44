package sdr

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestParentCacheNamesMatchManifest checks that every V1 and V1_1 proof's
// cache name is a key of the reference's manifest, for the right size:
// that is what makes caches written by rust-fil-proofs reusable as they are.
func TestParentCacheNamesMatchManifest(t *testing.T) {
	found := 0
	for _, p := range Proofs() {
		if p.API == APIVersion1_2 {
			continue // newer features share the V1_1 graphs
		}
		g, err := NewProofGraph(p)
		require.NoError(t, err)
		e, ok := ParentCacheManifest(ParentCacheName(g))
		require.True(t, ok, "%s: %s not in the manifest", p.Name, ParentCacheName(g))
		require.Equal(t, p.SectorSize, e.SectorSize, p.Name)
		found++
	}
	require.Equal(t, 10, found)
	require.Len(t, parsedManifest(), 10)
}

func TestGenerateParentsMatchesGraph(t *testing.T) {
	p, err := ProofByName("StackedDrg2KiBV1_1")
	require.NoError(t, err)
	g, err := NewProofGraph(p)
	require.NoError(t, err)
	table := ParentTable(g)
	for _, tc := range []struct{ first, count uint64 }{{0, 64}, {0, 1}, {17, 5}, {63, 1}} {
		dst := make([]byte, tc.count*ParentCacheBytesPerNode)
		GenerateParents(g, tc.first, dst)
		for i := range tc.count * Degree {
			require.Equal(t, table[tc.first*Degree+i], binary.LittleEndian.Uint32(dst[4*i:]), "first %d entry %d", tc.first, i)
		}
	}
}
