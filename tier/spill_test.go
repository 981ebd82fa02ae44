package tier

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlanSpill(t *testing.T) {
	for _, tc := range []struct {
		perLayer, dram int
		want           SpillPlan
		spills         bool
	}{
		{perLayer: 16, dram: 32, want: SpillPlan{Expander: 16, Window: 16}},
		{perLayer: 16, dram: 40, want: SpillPlan{Expander: 16, Window: 16}},
		{perLayer: 16, dram: 20, want: SpillPlan{Expander: 16, Window: 4}, spills: true},
		{perLayer: 16, dram: 17, want: SpillPlan{Expander: 16, Window: 1}, spills: true},
		{perLayer: 16, dram: 10, want: SpillPlan{Expander: 9, Window: 1}, spills: true},
		{perLayer: 64, dram: 70, want: SpillPlan{Expander: 64, Window: 6}, spills: true},
		{perLayer: 64, dram: 20, want: SpillPlan{Expander: 16, Window: 4}, spills: true},
		{perLayer: 4, dram: 1, want: SpillPlan{Expander: 0, Window: 1}, spills: true},
		{perLayer: 1, dram: 2, want: SpillPlan{Expander: 1, Window: 1}},
	} {
		got, err := PlanSpill(tc.perLayer, tc.dram)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "K=%d dram=%d", tc.perLayer, tc.dram)
		require.Equal(t, tc.spills, got.Spills(tc.perLayer))
		require.LessOrEqual(t, got.Expander+got.Window, tc.dram)
	}
	_, err := PlanSpill(8, 0)
	require.ErrorContains(t, err, "at least the block being written")
}
