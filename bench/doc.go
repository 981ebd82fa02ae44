// Package bench is pc1-tiered's measurement harness: sweeps that seal the
// same batch at each DRAM setting (and lockstep group size) through the one
// seal path, sealer.Label with measuring on, check that every point wrote
// byte-identical layer files, and write the results as CSV, JSON and plots.
// It is used by the command line only: nothing an embedder links pulls it
// (or its plotting libraries) in.
//
// A batch sweep (BatchSweep) seals one batch of B sectors, one pool job,
// from all-DRAM down to a window only, spilling to spill files below its
// pool minimum; its speed is each point's labels/s over its own all-DRAM
// point's in the same run, and its first point's layer files are checked
// against the same sectors sealed one at a time (SweepConfig.Want).
//
// Speed is sha_limit_ratio: node labels per second per busy core, times the
// 20 SHA-256 compressions a label costs, divided by the SHA-256 compression
// rate of one core measured over 64-byte blocks by the same process a moment
// before (package measure). 1.0 means the hashing never waited for memory,
// parents or I/O. Absolute times drift on shared machines; a ratio of two
// rates measured in one run does not.
//
// Memory is what the kernel reports for the process (VmHWM, and RssAnon and
// RssFile sampled from /proc/self/status), plus the page cache the layer
// files hold, next to the pool's own counters: the pool says what it handed
// out, the kernel says what it cost.
package bench
