package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestSealBatchBadInput drives bad --batch, --lockstep and --spill-dir
// values to seal (two 1 MiB sectors): each is refused in one line with a
// usage error (status 2), except a default spill directory (the first
// sector's) that refuses O_DIRECT, found once labeling is set up (status
// 1); nothing is left in --out and nothing under the row's root changes.
func TestSealBatchBadInput(t *testing.T) {
	cache := t.TempDir()
	code, _, stderr := runCLI(t, nil, "parents", "--sector-size", "1MiB", "--cache-dir", cache)
	require.Equal(t, 0, code, stderr)
	seal := func(extra ...string) func(*testing.T, string) []string {
		return func(_ *testing.T, root string) []string {
			return append([]string{"seal", "--sector-size", "1MiB", "--layers", "2", "--sectors", "2", "--out", filepath.Join(root, "out"),
				"--cache-dir", cache}, extra...)
		}
	}
	// spillDir seals a spilling batch of 2 with --spill-dir set to what
	// dir makes under root.
	spillDir := func(dir func(t *testing.T, root string) string) func(*testing.T, string) []string {
		return func(t *testing.T, root string) []string {
			return seal("--batch", "2", "--dram", "1MiB", "--spill-dir", dir(t, root))(t, root)
		}
	}
	const sizes = "give a batch size from 1 to 128, or leave --batch out for the automatic choice"
	rows := []badRow{
		{name: "seal/batch 0 given", setup: seal("--batch", "0"), code: 2, msg: "--batch 0: " + sizes},
		{name: "seal/batch 129", setup: seal("--batch", "129"), code: 2, msg: "--batch 129: " + sizes},
		{name: "seal/negative batch", setup: seal("--batch", "-1"), code: 2, msg: "--batch -1: " + sizes},
		{name: "seal/batch above the sector count", setup: seal("--batch", "3"), code: 2,
			msg: "--batch 3: only 2 sectors to seal; give --batch 2 or fewer"},
		{name: "seal/batch and lockstep", setup: seal("--batch", "2", "--lockstep", "2"), code: 2,
			msg: "--lockstep is the older name of --batch: give one"},
		{name: "seal/spill dir missing", setup: spillDir(func(_ *testing.T, root string) string { return filepath.Join(root, "nope") }), code: 2,
			msg: "--spill-dir: spill directory ... nope: stat ... nope: no such file or directory"},
		{name: "seal/spill dir a regular file", setup: spillDir(func(t *testing.T, root string) string {
			f := filepath.Join(root, "f")
			require.NoError(t, os.WriteFile(f, nil, 0o644))
			return f
		}), code: 2, msg: "--spill-dir: spill directory ... f: not a directory"},
		{name: "seal/read-only spill dir", setup: spillDir(func(t *testing.T, root string) string {
			return readOnlyDir(t, filepath.Join(root, "ro"))
		}), code: 2, msg: "--spill-dir: spill directory ... ro: open ... ro/.pc1-tiered-spill-layer-0-"},
		{name: "seal/spill dir on a read-only tmpfs", setup: spillDir(func(t *testing.T, root string) string {
			return mountAt(t, filepath.Join(root, "rotmpfs"), "tmpfs", unix.MS_RDONLY)
		}), code: 2, msg: "--spill-dir: spill directory ... rotmpfs: open ... read-only file system"},
		{name: "seal/spill dir refusing O_DIRECT", setup: spillDir(func(t *testing.T, root string) string {
			return mountAt(t, filepath.Join(root, "ramfs"), "ramfs", 0)
		}), code: 2, msg: "--spill-dir: spill directory ... ramfs: the filesystem refuses O_DIRECT"},
		{name: "seal/second spill dir missing", setup: func(t *testing.T, root string) []string {
			good := filepath.Join(root, "good")
			require.NoError(t, os.Mkdir(good, 0o755))
			return seal("--batch", "2", "--dram", "1MiB", "--spill-dir", good, "--spill-dir", filepath.Join(root, "nope"))(t, root)
		}, code: 2, msg: "--spill-dir: spill directory ... nope: stat "},
		{name: "seal/default spill dir refusing O_DIRECT", setup: func(t *testing.T, root string) []string {
			out := filepath.Join(mountAt(t, filepath.Join(root, "ramfs"), "ramfs", 0), "out")
			return append(seal("--batch", "2", "--dram", "1MiB")(t, root), "--out", out)
		}, code: 1, msg: "spill directory ... sector-0: the filesystem refuses O_DIRECT"},
	}
	checkBadRows(t, rows)
}

// mountAt mounts a fresh filesystem of type fstype at dir (root only; the
// test skips otherwise) and unmounts it when the test ends.
func mountAt(t *testing.T, dir, fstype string, flags uintptr) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("mounting %s needs root", fstype)
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	if err := unix.Mount(fstype, dir, fstype, flags, ""); err != nil {
		t.Skipf("cannot mount %s: %v", fstype, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}
