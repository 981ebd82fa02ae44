package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// proc is a real pc1-tiered process (the test binary running main).
type proc struct {
	cmd  *exec.Cmd
	out  syncBuffer
	err  syncBuffer
	done chan struct{}
	code int
}

// syncBuffer is a bytes.Buffer the process writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(os.Args[0], args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	require.NoError(t, p.cmd.Start())
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) wait() int { <-p.done; return p.code }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stopWhen polls until cond holds, then stops the process (SIGSTOP) so
// that it keeps its locks while the test runs another process against
// them. The process must not end first.
func (p *proc) stopWhen(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		require.False(t, p.exited(), "process ended (exit %d) before %s: %s", p.code, what, p.err.String())
		time.Sleep(100 * time.Microsecond)
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGSTOP))
}

func (p *proc) cont(t *testing.T) { require.NoError(t, p.cmd.Process.Signal(syscall.SIGCONT)) }

// waitStderr polls until the process has printed want on stderr.
func (p *proc) waitStderr(t *testing.T, want string) {
	t.Helper()
	for !strings.Contains(p.err.String(), want) {
		require.False(t, p.exited(), "process ended (exit %d) without printing %q: %s", p.code, want, p.err.String())
		time.Sleep(time.Millisecond)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestConcurrentSealsOneDirectory: a second seal into a directory a first
// seal is writing (a scheduler running two SDR tasks, an operator
// re-running a command) stops before touching anything, naming the
// directory and the first seal's pid, or with --wait waits for it; the
// first seal's sector verifies node by node.
func TestConcurrentSealsOneDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	cache := t.TempDir()
	idA := strings.Repeat("11", 31) + "0a"
	idB := strings.Repeat("22", 31) + "0b"
	for _, tc := range []struct {
		name   string
		second string // the second seal's replica id
		wait   bool
		// want is the replica id the sector ends with.
		want string
	}{
		{name: "other replica id", second: idB, want: idA},
		{name: "same replica id", second: idA, want: idA},
		{name: "other replica id, --wait", second: idB, wait: true, want: idB},
		{name: "same replica id, --wait", second: idA, wait: true, want: idA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			dir := filepath.Join(out, "sector-0")
			seal := func(id string, extra ...string) []string {
				return append([]string{"seal", "--sector-size", "1MiB", "--layers", "3", "--block-size", "4KiB",
					"--replica-id", id, "--out", out, "--cache-dir", cache}, extra...)
			}
			first := startProc(t, seal(idA)...)
			// Stopped mid-layer 1, with its lock held and its partial
			// file half written.
			first.stopWhen(t, "labeling layer 1", func() bool {
				st, err := os.Stat(filepath.Join(dir, sdr.LayerFileName(1)+".partial.progress"))
				return err == nil && st.Size() >= 24
			})
			var extra []string
			if tc.wait {
				extra = []string{"--wait"}
			}
			second := startProc(t, seal(tc.second, extra...)...)
			pid := fmt.Sprintf("pid %d", first.cmd.Process.Pid)
			if tc.wait {
				second.waitStderr(t, "waiting for it")
				require.Contains(t, second.err.String(), dir)
				require.Contains(t, second.err.String(), pid)
				first.cont(t)
			} else {
				require.Equal(t, 1, second.wait(), second.err.String())
				msg := second.err.String()
				require.Equal(t, 1, strings.Count(msg, "\n"), "one line: %q", msg)
				require.Contains(t, msg, "sector directory "+dir+" is being sealed by another process ("+pid+")")
				require.Contains(t, msg, "--wait")
				require.Empty(t, second.out.String())
				first.cont(t)
			}
			require.Equal(t, 0, first.wait(), first.err.String())
			require.Contains(t, first.out.String(), "sha_limit_ratio")
			if tc.wait {
				require.Equal(t, 0, second.wait(), second.err.String())
			}

			meta, err := blockio.ReadSectorMeta(dir)
			require.NoError(t, err)
			require.Equal(t, tc.want, hex.EncodeToString(meta.ReplicaID[:]))
			code, stdout, stderr := runCLI(t, nil, "verify", "--out", out, "--samples", "all", "--cache-dir", cache)
			require.Equal(t, 0, code, stderr)
			require.Contains(t, stdout, "verified 1 sectors, 3 layer files")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 4, "three layers and the metadata: no lock, partial file or progress log left")
		})
	}
}

// TestConcurrentParents: two processes asking for a parent cache nobody
// has generated yet: the second waits for the first's generation, says
// so, and uses it; one cache, generated once.
func TestConcurrentParents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	for _, cmd := range []string{"parents", "seal"} {
		t.Run(cmd, func(t *testing.T) {
			cache := t.TempDir()
			// A porep id no manifest knows, so that the cache is new; 1 MiB,
			// whose cache takes long enough to generate that the first
			// process is caught at it.
			porep := strings.Repeat("ab", 32)
			args := func(out string) []string {
				if cmd == "parents" {
					return []string{"parents", "--sector-size", "1MiB", "--porep-id", porep, "--cache-dir", cache}
				}
				return []string{"seal", "--sector-size", "1MiB", "--porep-id", porep, "--layers", "2",
					"--cache-dir", cache, "--out", out}
			}
			outA, outB := t.TempDir(), t.TempDir()
			first := startProc(t, args(outA)...)
			first.stopWhen(t, "generating the parent cache", func() bool {
				m, _ := filepath.Glob(filepath.Join(cache, "*.cache.generating"))
				return len(m) == 1
			})
			second := startProc(t, args(outB)...)
			second.waitStderr(t, "is being generated or replaced by another process; waiting for it")
			first.cont(t)
			require.Equal(t, 0, first.wait(), first.err.String())
			require.Equal(t, 0, second.wait(), second.err.String())

			entries, err := os.ReadDir(cache)
			require.NoError(t, err)
			require.Len(t, entries, 1, "one cache file, nothing else: %v", entries)
			if cmd == "parents" {
				var a, b parentsOutput
				require.NoError(t, json.Unmarshal([]byte(first.out.String()), &a))
				require.NoError(t, json.Unmarshal([]byte(second.out.String()), &b))
				require.True(t, a.Generated)
				require.False(t, b.Generated, "generated once")
				require.True(t, b.Verified, "the second checked the first's cache")
				require.Equal(t, a.SHA256, b.SHA256)
				return
			}
			for _, out := range []string{outA, outB} {
				code, _, stderr := runCLI(t, nil, "verify", "--out", out, "--samples", "all", "--cache-dir", cache)
				require.Equal(t, 0, code, stderr)
			}
		})
	}
}

// TestConcurrentSealsFromInputs: the same for seals from real inputs
// (sealer.SealBatch, which locks the sector before it writes tree_d): the
// first seal is stopped while it holds the sector's lock.
func TestConcurrentSealsFromInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	cache := t.TempDir()
	ticket := strings.Repeat("07", 32)
	for _, wait := range []bool{false, true} {
		t.Run(fmt.Sprintf("wait=%v", wait), func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "cache", "s-t01000-7")
			args := []string{"seal", "--proof", "StackedDrg2KiBV1_1", "--prover-id", "f01000", "--sector-number", "7",
				"--ticket", ticket, "--out", root, "--cache-dir", cache}
			first := startProc(t, args...)
			first.stopWhen(t, "holding the sector's lock", func() bool {
				data, err := os.ReadFile(filepath.Join(dir, blockio.SectorLockFile))
				return err == nil && strings.TrimSpace(string(data)) == fmt.Sprint(first.cmd.Process.Pid)
			})
			pid := fmt.Sprintf("pid %d", first.cmd.Process.Pid)
			if wait {
				second := startProc(t, append(args, "--wait")...)
				second.waitStderr(t, "waiting for it")
				require.Contains(t, second.err.String(), pid)
				first.cont(t)
				require.Equal(t, 0, first.wait(), first.err.String())
				require.Equal(t, 0, second.wait(), second.err.String())
			} else {
				second := startProc(t, args...)
				require.Equal(t, 1, second.wait(), second.err.String())
				msg := second.err.String()
				require.Equal(t, 1, strings.Count(msg, "\n"), "one line: %q", msg)
				require.Contains(t, msg, "sector 0 (s-t01000-7): sector directory "+dir+" is being sealed by another process ("+pid+")")
				first.cont(t)
				require.Equal(t, 0, first.wait(), first.err.String())
			}
			code, stdout, stderr := runCLI(t, nil, "verify", "--out", dir, "--samples", "all", "--cache-dir", cache)
			require.Equal(t, 0, code, stderr)
			require.Contains(t, stdout, "verified 1 sectors")
			require.NoFileExists(t, filepath.Join(dir, blockio.SectorLockFile))
		})
	}
}
