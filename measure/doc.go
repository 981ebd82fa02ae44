// Package measure takes the figures a report needs from the machine and
// the kernel: one core's SHA-256 compression rate (the yardstick of
// sha_limit_ratio), the process's memory (VmHWM, RssAnon, RssFile and
// AnonHugePages) and I/O counters (/proc/self/io, major faults), the page
// cache a file holds (mincore), what a load from a new 4 KiB page costs
// (MeasurePageWalk: whether huge pages widen the TLB), and a description of
// the host.
//
// /proc is read through github.com/prometheus/procfs, already in the module
// graph through the Prometheus client, but for two reads done by hand: the
// one field procfs does not parse (AnonHugePages of smaps_rollup), and the
// three fields of /proc/self/status the MemSampler reads every 20 ms of a
// seal (one open file, one buffer, no allocation: 6.5 us a read against
// procfs's 48 us and 126 allocations, BenchmarkReadStatus).
//
// # Costs
//
// Nothing here runs unless asked: a library seal that does not ask for
// measurement (sealer.LabelRequest.Measure) calls none of it. Measuring the
// SHA-256 rate takes the calling goroutine's core for the time given; a
// MemSampler reads /proc/self/status at its interval and scans the watched
// files' page cache at most a tenth of the time (mincore costs about 60 ms
// per 32 GiB file); MeasurePageWalk maps 32 MiB for its duration, about
// 0.1 s a round (bench runs it once).
package measure
