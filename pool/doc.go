// Package pool owns the shared block pool through which N concurrent PC1
// jobs draw the memory for their layers. It knows nothing about hashing or
// about where a block's bytes live: a block is an index into a fixed set of
// equal-sized blocks, and the tier package maps indexes to memory.
//
// # Sizing
//
// A sector of S bytes has layers of S bytes, split into K = S/B blocks of B
// bytes. A job labeling layer k > 1 reads the whole of layer k-1 (its
// expander parents) while it fills layer k, so at the end of a layer it holds
// 2K blocks; during layer 1 it holds at most K. N unshared jobs therefore need
// 2 x N x S, the pool's upper bound. Jobs started a fraction of a layer apart
// are at different points of their layers: the one that has just started
// holds about K blocks, the one about to finish about 2K, so together they
// hold about N x S + S x (0 + 1/N + ... + (N-1)/N) = (3N-1) x S / 2. The
// default, (3N+1) x S / 2, leaves one layer's worth of slack over that; the
// lower bound, (N+1) x S, is the least with which every job can still hold
// its expander layer and one job can always complete its current one.
//
// # Admission rule and why it cannot deadlock
//
// Each job declares at Join the most blocks it will ever hold at once (its
// claim: 2K, or K when it computes a single layer). Acquire grants a block
// only if the pool stays in a safe state afterwards (Dijkstra's banker's
// algorithm): there is an order of the joined jobs in which each one's
// remaining need (claim minus held) fits in the free blocks plus everything
// held by the jobs before it. Checking the jobs by ascending need decides
// this, because letting any job that fits finish only ever adds free blocks.
// The job with the smallest need is the one closest to finishing its layer
// (it holds the most of its current layer), so the rule is exactly "always
// keep enough in reserve for the job closest to done".
//
//   - Never stuck: in a safe state the first job of the safe order can be
//     granted every block it asks for (granting it one block keeps the same
//     order valid), finishes its layer, releases its expander layer, and so
//     on until it leaves; then the next job of the order is in the same
//     position. A job that holds its claim never asks for more, so a safe
//     state is never one where every unfinished job is waiting.
//   - Joining is always safe: a new job holds nothing and needs its claim,
//     at most 2K, and goes last in the order, where every block is free
//     again; with at most N jobs and a pool of at least (N+1) x S >= 2 x S
//     that always fits.
//   - No starvation: waiting jobs wait on one condition variable and every
//     release wakes all of them to re-check. A waiting job X is granted at
//     the latest once the jobs before it in the safe order have released
//     what they hold, which is a bounded number of releases (their remaining
//     blocks); those jobs make progress because the first of them can always
//     be served.
//
// The argument assumes what the labeler does: a job releases its expander
// layer's blocks after finishing each layer, and Leave returns everything a
// job still holds (also when it fails or is cancelled). Acquire honours its
// context, and Close wakes every waiter with ErrClosed.
//
// # Throughput against pool size, N and cores
//
// At the maximum pool (2 x N x S) no job ever waits. At the default,
// staggered jobs hold (3N-1) x S / 2 on average, so there is a free layer of
// slack and waits are rare; a job only waits when the jobs bunch up (they
// drift at different speeds when there are more jobs than cores). At the
// minimum, (N+1) x S, only one job at a time can hold more than its expander
// layer once every job has reached layer 2: the others wait for whole
// layers, so total throughput falls towards that of a single job, and the
// wait times in the report show it. Throughput is capped by cores anyway:
// with C cores and N > C jobs, the extra jobs wait for a core, and a pool
// that keeps C jobs busy gives the same total throughput as the maximum, so
// on a machine with few cores a small pool costs less than N suggests.
package pool
