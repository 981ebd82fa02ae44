package measure

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMeasurePageWalk(t *testing.T) {
	w, err := MeasurePageWalk(1)
	require.NoError(t, err)
	require.Positive(t, w.SpreadNs)
	require.Positive(t, w.PackedNs)
	require.NotEmpty(t, w.String())
}

func TestPageWalkString(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    PageWalk
		want string
	}{
		{"no huge pages", PageWalk{SpreadNs: 60, PackedNs: 4}, "the kernel gave no huge pages"},
		{"huge pages, small host pages", PageWalk{SpreadNs: 45, PackedNs: 4, HugePages: true}, "huge pages do not widen the TLB here"},
		{"huge pages working", PageWalk{SpreadNs: 6, PackedNs: 4, HugePages: true}, "huge pages widen the TLB"},
		{"noise: spread below packed", PageWalk{SpreadNs: 3.9, PackedNs: 4, HugePages: true}, "huge pages widen the TLB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, tc.w.String(), tc.want)
			require.GreaterOrEqual(t, tc.w.WalkNs(), 0.0)
		})
	}
}
