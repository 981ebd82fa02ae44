package sealer

import (
	"bytes"
	"encoding/json"
	"runtime"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/measure"
	"github.com/stretchr/testify/require"
)

func TestReportJSON(t *testing.T) {
	r := &Report{Measured: true, Proof: "p", SectorSize: 2048, SHALimitRatio: 0.9, Host: measure.ReadHost(),
		Sectors: []SectorReport{{Index: 0, Dir: "d", ReplicaID: "ab", Layers: 2}}}
	data, err := r.JSON()
	require.NoError(t, err)
	require.True(t, bytes.HasSuffix(data, []byte("\n")))
	var m map[string]any
	require.NoError(t, json.Unmarshal(data, &m))
	for _, k := range []string{"sectors", "wall_seconds", "nodes_per_second", "sha_limit_ratio", "peak_rss_bytes",
		"peak_anon_bytes", "pool_size_bytes", "block_size_bytes", "pool_peak_bytes", "host"} {
		require.Contains(t, m, k)
	}
	require.Equal(t, runtime.NumCPU(), int(m["host"].(map[string]any)["cores"].(float64)))
	require.Contains(t, r.String(), "sha_limit_ratio 0.900")
}
