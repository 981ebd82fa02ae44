package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// FuzzSizeFlag checks sizeFlag on any flag value and environment value: it
// never panics, an error is a one-line usage error naming where the value
// came from, and a success is exactly what sdr.ParseSize reads.
func FuzzSizeFlag(f *testing.F) {
	for _, s := range [][2]string{{"", ""}, {"96GiB", ""}, {"", "6KiB"}, {"1 tib", "x"}, {"18446744073709551615", ""}, {"", "99999999999999999999G"}, {"0", "1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, value, envValue string) {
		n, err := sizeFlag("--pool-size", value, "MEM_POOL_SIZE", func(k string) string {
			require.Equal(t, "MEM_POOL_SIZE", k)
			return envValue
		})
		from, given := "--pool-size", value
		if value == "" {
			from, given = "$MEM_POOL_SIZE", envValue
		}
		if given == "" {
			require.NoError(t, err)
			require.Zero(t, n, "neither given")
			return
		}
		want, werr := sdr.ParseSize(given)
		if werr != nil {
			require.Error(t, err)
			require.True(t, errors.Is(err, errUsage), "a bad size is a usage error: %v", err)
			require.True(t, strings.HasPrefix(err.Error(), from+": "), "the error names %s: %v", from, err)
			require.NotContains(t, err.Error(), "\n", "one line")
			return
		}
		require.NoError(t, err)
		require.Equal(t, want, n)
	})
}

// FuzzGraphFlags resolves any combination of --proof, --sector-size,
// --porep-id and --api-version: it never panics, and it returns either a
// usable graph whose description is consistent with the flags, or a
// one-line usage error.
func FuzzGraphFlags(f *testing.F) {
	id := strings.Repeat("0a", 32)
	for _, s := range [][4]string{
		{"", "", "", ""},
		{"StackedDrg2KiBV1", "", "", ""},
		{"RegisteredSealProof_StackedDrg32GiBV1_1", "32GiB", "", ""},
		{"StackedDrg8MiBV1_2_Feat_NiPoRep", "", "", ""},
		{"", "2KiB", "", "1.0"},
		{"", "64KiB", "0x" + id, "1.2.0"},
		{"StackedDrg2KiBV1", "", id, ""},
		{"", "3000", "", ""},
		{"", "2KiB\n", "", ""},
		{"", "256TiB", "", ""},
		{"x", "8M", "zz", "9"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, proof, size, porepID, api string) {
		gf := graphFlags{proof: proof, sectorSize: size, porepID: porepID, apiVersion: api}
		spec, err := gf.resolve()
		if err != nil {
			require.True(t, errors.Is(err, errUsage), "a bad graph flag is a usage error: %v", err)
			require.NotContains(t, err.Error(), "\n", "one line")
			require.Nil(t, spec.graph)
			return
		}
		g := spec.graph
		require.NotNil(t, g)
		require.NoError(t, sdr.CheckSectorSize(g.SectorSize()))
		require.Equal(t, g.SectorSize()/sdr.NodeSize, g.Nodes())
		require.GreaterOrEqual(t, spec.layers, 1)
		if size != "" {
			want, err := sdr.ParseSize(size)
			require.NoError(t, err)
			require.Equal(t, want, g.SectorSize())
		}
		if spec.proof != "" {
			p, err := sdr.ProofByName(spec.proof)
			require.NoError(t, err)
			require.Equal(t, p.PorepID(), g.PorepID())
			require.Equal(t, p.API, g.API())
			require.Equal(t, p.SectorSize, g.SectorSize())
			require.Equal(t, p.Layers, spec.layers)
		}
		if porepID != "" {
			want, err := sdr.ParseHex32(porepID)
			require.NoError(t, err)
			require.Equal(t, want, g.PorepID())
			require.Empty(t, spec.proof)
		}
		require.NotEmpty(t, spec.String())
	})
}
