// Package bench is pc1-tiered's measurement harness: it runs the labeler
// and reports what happened in figures that mean the same on any machine.
//
// Speed is sha_limit_ratio: node labels per second per busy core, times the
// 20 SHA-256 compressions a label costs, divided by the SHA-256 compression
// rate of one core measured over 64-byte blocks by the same process a moment
// before. 1.0 means the hashing never waited for memory, parents or I/O.
// Absolute times drift on shared machines; a ratio of two rates measured in
// one run does not.
//
// Memory is what the kernel reports for the process (VmHWM, and RssAnon and
// RssFile sampled from /proc/self/status), next to the pool's own counters:
// the pool says what it handed out, the kernel says what it cost.
package bench
