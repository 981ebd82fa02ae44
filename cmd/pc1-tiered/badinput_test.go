package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// badRow is one bad command line. setup prepares root (a fresh temporary
// directory) and returns the arguments; everything under root is compared
// before and after the run, so a row fails if the command created,
// removed or changed anything there.
type badRow struct {
	name  string
	setup func(t *testing.T, root string) []string
	vars  map[string]string
	code  int
	msg   string
}

// TestBadInputLeavesNothing drives each bad input to seal, parents and
// verify through run(): the exit status, one line on stderr containing the
// key phrase, nothing on stdout, and no file or directory created. Rows
// TestBadInput (main_test.go) already has are not repeated here.
func TestBadInputLeavesNothing(t *testing.T) {
	// A good 2 KiB parent cache and a good sealed sector to damage copies
	// of; both live outside the rows' roots.
	cache := t.TempDir()
	code, _, stderr := runCLI(t, nil, "parents", "--proof", "StackedDrg2KiBV1_1", "--cache-dir", cache)
	require.Equal(t, 0, code, stderr)
	sealed := t.TempDir()
	code, _, stderr = runCLI(t, nil, "seal", "--proof", "StackedDrg2KiBV1_1", "--out", sealed, "--cache-dir", cache)
	require.Equal(t, 0, code, stderr)
	g2k := graphOf(t, "StackedDrg2KiBV1_1")
	g8m := graphOf(t, "StackedDrg8MiBV1_1")

	seal := func(extra ...string) func(*testing.T, string) []string {
		return func(_ *testing.T, root string) []string {
			return append([]string{"seal", "--sector-size", "2KiB", "--out", filepath.Join(root, "out"), "--cache-dir", cache}, extra...)
		}
	}
	// badCache writes a cache file for g under root/cache: zeros, so the
	// right size but the wrong digest, or size bytes.
	badCache := func(t *testing.T, root string, g *sdr.Graph, size uint64) string {
		dir := filepath.Join(root, "cache")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, sdr.ParentCacheFileName(g)), make([]byte, size), 0o644))
		return dir
	}
	wrongDigest := func(t *testing.T, root string) string {
		return badCache(t, root, g2k, g2k.Nodes()*sdr.ParentCacheBytesPerNode)
	}
	// sector copies the sealed sector to root/out/sector-0 and returns
	// its directory.
	sector := func(t *testing.T, root string) string {
		dir := filepath.Join(root, "out", "sector-0")
		require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join(sealed, "sector-0"))))
		return dir
	}
	verify := func(extra ...string) func(*testing.T, string) []string {
		return func(t *testing.T, root string) []string {
			sector(t, root)
			return append([]string{"verify", "--out", filepath.Join(root, "out"), "--cache-dir", cache}, extra...)
		}
	}
	hexID := strings.Repeat("0f", 32)

	rows := []badRow{
		// seal: sizes and pool
		{name: "seal/size below 2KiB", setup: seal("--sector-size", "1KiB"), code: 2, msg: `--sector-size "1KiB": sector size 1024 is not supported: it must be a power of two from 2KiB (2048) to 128GiB`},
		{name: "seal/size zero", setup: seal("--sector-size", "0"), code: 2, msg: "sector size 0 is not supported"},
		{name: "seal/unknown spill engine", setup: seal("--spill-engine", "aio"), code: 2, msg: `--spill-engine: unknown read engine "aio": auto, io_uring or pread`},
		{name: "seal/size above 128GiB", setup: seal("--sector-size", "256GiB"), code: 2, msg: "sector size 274877906944 is not supported"},
		{name: "seal/size not the proof's", setup: seal("--proof", "StackedDrg2KiBV1_1", "--sector-size", "8MiB"), code: 2, msg: `--sector-size "8MiB" does not match StackedDrg2KiBV1_1 (2KiB); for other sizes use --porep-id`},
		{name: "seal/pool above the maximum", setup: seal("--pool-size", "1GiB"), code: 1, msg: "pool size 1.0 GiB is outside [4.0 KiB, 4.0 KiB] for 1 jobs of 2.0 KiB sectors"},
		{name: "seal/pool below the minimum for 2 jobs", setup: seal("--sectors", "2", "--parallel", "2", "--pool-size", "5KiB"), code: 1, msg: "pool size 5.0 KiB is outside [6.0 KiB, 8.0 KiB] for 2 jobs"},
		{name: "seal/MEM_POOL_SIZE out of bounds", setup: seal(), vars: map[string]string{"MEM_POOL_SIZE": "1MiB"}, code: 1, msg: "pool size 1.0 MiB is outside [4.0 KiB, 4.0 KiB]"},
		// seal: hex ids
		{name: "seal/malformed replica id", setup: seal("--replica-id", strings.Repeat("g", 64)), code: 2, msg: `--replica-id #1: hex id "gggg`},
		{name: "seal/odd-length porep id", setup: seal("--porep-id", "abc"), code: 2, msg: `--porep-id: hex id "abc": encoding/hex: odd length hex string`},
		{name: "seal/long porep id", setup: seal("--porep-id", hexID+"00"), code: 2, msg: "want 32 bytes (64 hex digits), got 33 bytes"},
		// seal: output and report
		{name: "seal/output dir in a read-only dir", setup: func(t *testing.T, root string) []string {
			ro := readOnlyDir(t, filepath.Join(root, "ro"))
			return append(seal()(t, root), "--out", filepath.Join(ro, "out"))
		}, code: 1, msg: "output directory ... : mkdir ... read-only file system"},
		{name: "seal/read-only output dir", setup: func(t *testing.T, root string) []string {
			ro := readOnlyDir(t, filepath.Join(root, "ro"))
			return append(seal()(t, root), "--out", ro)
		}, code: 1, msg: "output directory ... sector-0: mkdir ... sector-0: read-only file system"},
		{name: "seal/read-only report dir", setup: func(t *testing.T, root string) []string {
			ro := readOnlyDir(t, filepath.Join(root, "ro"))
			return seal("--report", filepath.Join(ro, "r.json"))(t, root)
		}, code: 1, msg: "r.json is not writable"},
		{name: "seal/report path is a directory", setup: func(t *testing.T, root string) []string {
			require.NoError(t, os.Mkdir(filepath.Join(root, "r.json"), 0o755))
			return seal("--report", filepath.Join(root, "r.json"))(t, root)
		}, code: 1, msg: "r.json is a directory"},
		// seal: parent cache
		{name: "seal/cache of the wrong digest", setup: func(t *testing.T, root string) []string {
			return []string{"seal", "--proof", "StackedDrg2KiBV1_1", "--out", filepath.Join(root, "out"), "--cache-dir", wrongDigest(t, root)}
		}, code: 1, msg: "has sha256 ... ; remove it or regenerate it (pc1-tiered parents --regenerate)"},

		// parents
		{name: "parents/unknown proof", setup: func(*testing.T, string) []string {
			return []string{"parents", "--proof", "StackedDrg2KiBV2"}
		}, code: 2, msg: `--proof: unknown proof "StackedDrg2KiBV2"`},
		{name: "parents/size not a power of two", setup: func(_ *testing.T, root string) []string {
			return []string{"parents", "--sector-size", "3KiB", "--cache-dir", root}
		}, code: 2, msg: "sector size 3072 is not supported"},
		{name: "parents/malformed porep id", setup: func(_ *testing.T, root string) []string {
			return []string{"parents", "--sector-size", "2KiB", "--porep-id", "0x" + strings.Repeat("z", 64), "--cache-dir", root}
		}, code: 2, msg: "invalid byte"},
		{name: "parents/cache of the wrong digest", setup: func(t *testing.T, root string) []string {
			return []string{"parents", "--proof", "StackedDrg2KiBV1_1", "--cache-dir", wrongDigest(t, root)}
		}, code: 1, msg: "has sha256 ... ; remove it or regenerate it (pc1-tiered parents --regenerate)"},
		{name: "parents/8MiB cache of the wrong size", setup: func(t *testing.T, root string) []string {
			return []string{"parents", "--proof", "StackedDrg8MiBV1_1", "--cache-dir", badCache(t, root, g8m, 4096)}
		}, code: 1, msg: "is 4096 bytes, want 14680064 for 262144 nodes"},
		{name: "parents/read-only cache dir", setup: func(t *testing.T, root string) []string {
			return []string{"parents", "--proof", "StackedDrg2KiBV1_1", "--cache-dir", readOnlyDir(t, filepath.Join(root, "ro"))}
		}, code: 1, msg: ".cache: creating it: open ... read-only file system"},
		{name: "parents/cache dir under a file", setup: func(t *testing.T, root string) []string {
			require.NoError(t, os.WriteFile(filepath.Join(root, "f"), nil, 0o644))
			return []string{"parents", "--proof", "StackedDrg2KiBV1_1", "--cache-dir", filepath.Join(root, "f", "cache")}
		}, code: 1, msg: "not a directory"},

		// verify
		{name: "verify/missing output dir", setup: func(_ *testing.T, root string) []string {
			return []string{"verify", "--out", filepath.Join(root, "nope"), "--cache-dir", cache}
		}, code: 1, msg: "nope: no such file or directory"},
		{name: "verify/no sectors", setup: func(_ *testing.T, root string) []string {
			return []string{"verify", "--out", root, "--cache-dir", cache}
		}, code: 1, msg: "holds no sector: neither pc1-tiered.json nor sector-<i> directories"},
		{name: "verify/samples not a number", setup: verify("--samples", "most"), code: 2, msg: `--samples "most": want a number of nodes (0 or more) or all`},
		{name: "verify/negative samples", setup: verify("--samples", "-5"), code: 2, msg: `--samples "-5"`},
		{name: "verify/malformed seed", setup: verify("--seed", "0x"), code: 2, msg: `invalid value "0x" for flag -seed`},
		{name: "verify/sector without metadata", setup: func(t *testing.T, root string) []string {
			require.NoError(t, os.Remove(filepath.Join(sector(t, root), "pc1-tiered.json")))
			return []string{"verify", "--out", filepath.Join(root, "out"), "--cache-dir", cache}
		}, code: 1, msg: "sector-0: sector metadata: open "},
		{name: "verify/malformed metadata hex", setup: func(t *testing.T, root string) []string {
			meta := filepath.Join(sector(t, root), "pc1-tiered.json")
			data, err := os.ReadFile(meta)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(meta, []byte(strings.Replace(string(data), `"porep_id": "05`, `"porep_id": "5`, 1)), 0o644))
			return []string{"verify", "--out", filepath.Join(root, "out"), "--cache-dir", cache}
		}, code: 1, msg: "pc1-tiered.json: porep_id: hex id "},
		{name: "verify/truncated layer", setup: func(t *testing.T, root string) []string {
			require.NoError(t, os.Truncate(filepath.Join(sector(t, root), sdr.LayerFileName(2)), 1024))
			return []string{"verify", "--out", filepath.Join(root, "out"), "--cache-dir", cache}
		}, code: 1, msg: "sector-0: layer 2: layer file "},
		{name: "verify/missing layer", setup: func(t *testing.T, root string) []string {
			require.NoError(t, os.Remove(filepath.Join(sector(t, root), sdr.LayerFileName(1))))
			return []string{"verify", "--out", filepath.Join(root, "out"), "--cache-dir", cache}
		}, code: 1, msg: "sc-02-data-layer-1.dat: no such file or directory"},
		{name: "verify/cache of the wrong size", setup: func(t *testing.T, root string) []string {
			return verify("--cache-dir", badCache(t, root, g2k, 1000))(t, root)
		}, code: 1, msg: "is 1000 bytes, want 3584 for 64 nodes"},
		{name: "verify/cache of the wrong digest", setup: func(t *testing.T, root string) []string {
			return verify("--cache-dir", wrongDigest(t, root))(t, root)
		}, code: 1, msg: "has sha256 ... ; remove it or regenerate it (pc1-tiered parents --regenerate)"},
		{name: "verify/cache file of another graph", setup: func(t *testing.T, root string) []string {
			return verify("--cache-dir", filepath.Join(cache, sdr.ParentCacheFileName(g8m)))(t, root)
		}, code: 1, msg: "is not this sector's: its graph's cache is " + sdr.ParentCacheFileName(g2k)},
	}
	checkBadRows(t, rows)
}

// checkBadRows runs each row in a fresh root and checks what
// TestBadInputLeavesNothing promises.
func checkBadRows(t *testing.T, rows []badRow) {
	t.Helper()
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			args := tc.setup(t, root)
			before := tree(t, root)
			code, stdout, stderr := runCLI(t, tc.vars, args...)
			t.Logf("exit %d: %s", code, strings.TrimSuffix(stderr, "\n"))
			require.Equal(t, tc.code, code, stderr)
			require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			require.True(t, strings.HasPrefix(stderr, "pc1-tiered "+args[0]+": "), stderr)
			for _, part := range strings.Split(tc.msg, " ... ") {
				require.Contains(t, stderr, part)
			}
			require.Empty(t, stdout)
			require.Equal(t, before, tree(t, root), "nothing created, removed or changed under %s", root)
			requireNoOutput(t, args)
		})
	}
}

// requireNoOutput checks that a failed command line left no output behind:
// its --out directory is missing or as empty as it was, holding neither
// layer files nor sector directories, and its --report file does not
// exist. (A directory --out names may have existed before the run.)
func requireNoOutput(t *testing.T, args []string) {
	t.Helper()
	if len(args) == 0 || args[0] != "seal" {
		return
	}
	for i := 1; i+1 < len(args); i++ {
		switch args[i] {
		case "--out", "-out":
			entries, err := os.ReadDir(args[i+1])
			if err == nil {
				require.Empty(t, entries, "a refused seal leaves nothing in %s", args[i+1])
			}
		case "--report", "-report":
			if st, err := os.Stat(args[i+1]); err == nil {
				require.True(t, st.IsDir(), "a refused seal writes no report %s", args[i+1])
			}
		}
	}
}

// tree lists every path under root with its size (directories as -1).
func tree(t *testing.T, root string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	require.NoError(t, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		size := int64(-1)
		if !d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			size = info.Size()
		}
		out[path] = size
		return nil
	}))
	return out
}

// readOnlyDir makes dir and makes it read-only, even for root (whom
// permissions do not stop), with a read-only bind mount; it skips the test
// when that is impossible.
func readOnlyDir(t *testing.T, dir string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	if os.Geteuid() != 0 {
		require.NoError(t, os.Chmod(dir, 0o555))
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return dir
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot make %s read-only: %v", dir, err)
	}
	return dir
}

func graphOf(t *testing.T, proof string) *sdr.Graph {
	t.Helper()
	p, err := sdr.ProofByName(proof)
	require.NoError(t, err)
	g, err := sdr.NewProofGraph(p)
	require.NoError(t, err)
	return g
}
