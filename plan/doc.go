// Package plan answers "how many sectors can this machine seal at once, and how
// fast" from measured figures (the SHA-256 rate, probed spill devices) and
// arithmetic it shows line by line. It measures nothing itself. The model:
//
//   - Memory. A reserve is kept from RAM: SystemReserve (2 GiB, OS and Go
//     runtime), the whole parent cache (14 x 4 bytes per node = 1.75 x S,
//     56 GiB for 32 GiB sectors: every job reads all of it each layer, and
//     rust-fil-proofs too relies on it staying in the page cache) and
//     JobReserve (8 MiB) per job for its buffers outside the pool. A caller
//     may replace the whole reserve (pc1-tiered plan --reserve).
//   - Pool. With A = RAM - reserve and pool.Bounds (N+1) x S <= pool <=
//     2 x N x S, default (3N+1) x S / 2: A >= default is full speed (the
//     README measured 0.99 of the maximum pool's speed at the default).
//     Between the minimum and the default the pool is A (whole blocks) and
//     the speed is the all-DRAM speed times a pool-wait factor interpolated
//     linearly between the README's measured 0.74 at the minimum and 0.99 at
//     the default (4 x 64 MiB sectors on 2 cores): an interpolation of two
//     measurements, not a model of the waits.
//   - Spill, below the minimum. Each job owns A/N (whole blocks) and splits
//     it as tier.PlanSpill does, exactly as the labeler would with
//     seal --dram N x that. In layers 2..L a node makes 8 x (spilled share
//     of the previous layer) cold expander reads plus the cold base reads
//     for the window kept of the layer being written; layer 1 has only base
//     parents and rings through all of the job's blocks. The base part is
//     sampled from the real graph each time (DefaultPlanSamples nodes, one
//     per equal stratum of the layer, fixed seed; nothing is cached between
//     calls): the base parents that fall before the window of blocks. It
//     reproduces ARCHITECTURE.md's table (0.81 to 0.07 for S/64 to S/2).
//   - Device reads. The device serves 4 KiB pages, and the labeler's
//     prefetcher fetches a page once for all the nodes of its PrefetchAheadNodes-node
//     look-ahead that need it, so a read is a distinct page per look-ahead:
//     for base parents counted on sampled runs of PrefetchAheadNodes (1024) consecutive nodes,
//     for expander parents (uniform over P spilled pages) the expected
//     distinct count P (1 - (1 - 1/P)^m) of m draws. At 32 GiB this equals
//     the cold parents; on small sectors pages are shared (64 MiB with a
//     one-block window: about 1.0 cold parent but 0.75 page per node). A
//     spilling job's reader maps its page buffers up front
//     (tier.ReaderBufferBytes: 4.2 MiB for a single sector's job, 16.2 MiB
//     for a batch's), counted in its DRAM.
//   - Speed. One core labels v_core = (SHA-256 compressions/s) / 20 x
//     efficiency (default 0.9) nodes/s with every parent in DRAM; C' =
//     min(cores, N) cores hash. A page read costs c seconds of CPU and
//     one of the R pages/s the devices serve (summed over distinct
//     devices), both measured by the device probe on the spill tier's own
//     path (tier.DeviceSpeed.SpillReadsPerSecond: random 4 KiB pages read
//     with O_DIRECT through the tier's DeviceReader, io_uring where the
//     host allows, at the prefetcher's depth and batch); c is the hashing
//     a read takes away from threads hashing meanwhile
//     (tier.DeviceSpeed.HashCPUSecondsPerRead), which counts the kernel's
//     and the interrupts' share of a read, not only the process's CPU
//     time (on the development VM 9 us against 2). Per layer kind the CPU bound
//     C' / (1/v_core + reads x c) and the device bound R / reads combine
//     as (cpu^-4 + dev^-4)^(-1/4): the smaller where they are far apart,
//     below both where they are close, since then each resource waits on
//     the other (softMinPower says how that was fit). The batch runs at
//     L / (1/V_1 + (L-1)/V_later). Stalls the prefetcher fails to hide (a
//     synchronous fault costs its latency, not only its CPU) are left out.
//   - Batches (design/BATCH.md). A batch of B sectors (1 to MaxBatch) is
//     one job walking the graph in lockstep, its labels node-major: a
//     node's record is B x 32 bytes, and one device page read serves a
//     parent for all B. Everything above is per job, with a job's block B
//     times the per-sector block (labeler.DefaultSpillBlockSize), so the
//     DRAM splits as tier.PlanBudget(A, batches, B x block, S / block).
//     For B >= 2 a layer's device copy is a spill file: a 4 KiB page holds
//     rpp = floor(128 / B) whole records, a block starts on a page of its
//     own (ceil(nodes per block / rpp) pages, padded when B is not a power
//     of two), and every block of every layer is written to it once (B x S
//     a layer, sequential); B = 1 reads the layer file, 128 labels a page,
//     exactly as above. Page reads per node-group r are counted as above
//     with rpp records a page. With N = batches x B' (B' = N / batches:
//     B, or less when the last batch is short) the device bound is
//     B' x R / r labels/s and the CPU bound C' / (1/v_core + r x c / B'):
//     each read's CPU is shared by B' labels. DRAM per sector is
//     batches x (B x block x (E + W) + reader buffers) / N. Without
//     Input.Batch, sectors that fit without spill keep the pool plan;
//     spilling ones get the fastest (over all layers) of B = N (or the
//     fewest batches of at most MaxBatch), the halvings of the batch
//     count, the divisors of N and 1. Left out: the prefetcher's cap of
//     1024 held pages, which at r ~ 9 shortens its look-ahead to ~110
//     node-groups (expander pages rarely repeat within one anyway); the
//     spill files' write bandwidth (shown, not charged); the smaller
//     blocks a short last batch could use; lockstep's hashing gain; and
//     the parent cache, still reserved though a batch reads it once per
//     layer.
package plan
