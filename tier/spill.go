package tier

import "fmt"

// SpillPlan is how one job splits the DRAM blocks it owns between the two
// layers it reads while labeling; every other block of those layers is
// read from the layer files on the device.
type SpillPlan struct {
	// Expander is how many blocks of the previous layer stay in DRAM (the
	// first ones; the rest are read from its layer file).
	Expander int
	// Window is how many of the most recent blocks of the layer being
	// written stay in DRAM; older ones are dropped once written.
	Window int
}

// Spills reports whether the plan keeps anything out of DRAM.
func (p SpillPlan) Spills(perLayer int) bool { return p.Expander < perLayer || p.Window < perLayer }

// PlanSpill splits dram blocks for layers of perLayer blocks.
//
// The order follows where parents fall (ARCHITECTURE.md): expander parents
// are uniform over the previous layer, so each spilled block of it costs
// 8/perLayer device reads per node, all layer long; base parents fall off
// like 1/distance behind the write head, so a window of the last S/16
// leaves about 0.5 cold reads per node and a larger one buys little more.
// So: first a window of S/16 (at least one block: the one being written),
// then the whole expander layer, then the rest of the window.
func PlanSpill(perLayer, dram int) (SpillPlan, error) {
	if dram < 1 {
		return SpillPlan{}, fmt.Errorf("spill: %d DRAM blocks per job: need at least the block being written", dram)
	}
	w := min(dram, max(1, perLayer/16))
	e := min(perLayer, dram-w)
	w = min(perLayer, dram-e)
	return SpillPlan{Expander: e, Window: w}, nil
}

// PlanBudget shares a batch's DRAM budget between jobs jobs, each owning
// budget/jobs in whole blocks of blockSize bytes, and splits each job's
// blocks with PlanSpill for layers of perLayer blocks. It returns the plan
// and the blocks a job owns: the labeler runs on it, and plan predicts from
// the same arithmetic.
func PlanBudget(budget uint64, jobs int, blockSize uint64, perLayer int) (SpillPlan, int, error) {
	if jobs < 1 || blockSize == 0 {
		return SpillPlan{}, 0, fmt.Errorf("spill: %d jobs of %d-byte blocks", jobs, blockSize)
	}
	perJob := int(budget / uint64(jobs) / blockSize)
	plan, err := PlanSpill(perLayer, perJob)
	return plan, perJob, err
}
