package main

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// paddedData is size bytes of random Fr32-padded sector data (every node's
// top two bits clear), as Lotus' unsealed file holds it.
func paddedData(seed, size uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 77))
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for i := 31; i < len(b); i += 32 {
		b[i] &= 0x3f
	}
	return b
}

// lotusUnsealed appends Lotus' unsealed-file trailer (rle+ bytes and their
// u32 LE length) to data.
func lotusUnsealed(data []byte) []byte {
	rle := []byte{0x0c, 0x80, 0x01}
	out := append(append(append([]byte(nil), data...), rle...), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(out[len(out)-4:], uint32(len(rle)))
	return out
}

func zeroCommDHex(t *testing.T, size uint64) string {
	t.Helper()
	c, err := sdr.ZeroCommD(size)
	require.NoError(t, err)
	return hex.EncodeToString(c[:])
}

// sectorLine matches the line seal prints per sector sealed from inputs.
var sectorLine = regexp.MustCompile(`(?m)^  (s-t0\d+-\d+)  comm_d ([0-9a-f]{64})  replica_id ([0-9a-f]{64})  (\S+)$`)

type sealedLine struct{ name, commD, replicaID, dir string }

func sealedLines(t *testing.T, stdout string) []sealedLine {
	t.Helper()
	var out []sealedLine
	for _, m := range sectorLine.FindAllStringSubmatch(stdout, -1) {
		out = append(out, sealedLine{m[1], m[2], m[3], m[4]})
	}
	return out
}

// requireSameLayers checks that dir's layer files are byte for byte ref's.
func requireSameLayers(t *testing.T, dir, ref string, layers int) {
	t.Helper()
	for k := 1; k <= layers; k++ {
		got, err := os.ReadFile(filepath.Join(dir, sdr.LayerFileName(k)))
		require.NoError(t, err)
		want, err := os.ReadFile(filepath.Join(ref, sdr.LayerFileName(k)))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got), "layer %d of %s differs from %s", k, dir, ref)
	}
}

// TestSealFromInputs seals one sector from (prover id, sector number,
// ticket, staged file) and checks the storage layout, comm_d, tree_d's
// size, the phase-1 output, and that the layers are byte for byte those of
// seal --replica-id with the replica id it printed.
func TestSealFromInputs(t *testing.T) {
	src := t.TempDir()
	data2k := paddedData(1, 2048)
	plain := filepath.Join(src, "plain")
	require.NoError(t, os.WriteFile(plain, data2k, 0o644))
	unsealed := filepath.Join(src, "unsealed")
	require.NoError(t, os.WriteFile(unsealed, lotusUnsealed(data2k), 0o644))
	commD2k, err := sdr.CommD(bytes.NewReader(data2k), 2048/32)
	require.NoError(t, err)
	ticket := strings.Repeat("5a", 32)
	cache := t.TempDir()

	for _, tc := range []struct {
		name, proof, prover, number, staged string
		size                                uint64
		layers                              int
		commD, dir                          string
		long                                bool
	}{
		{name: "2KiB CC", proof: "StackedDrg2KiBV1_1", prover: "f01000", number: "3", size: 2048, layers: 2, commD: zeroCommDHex(t, 2048), dir: "s-t01000-3"},
		{name: "2KiB staged", proof: "StackedDrg2KiBV1_1", prover: "t01000", number: "4", staged: plain, size: 2048, layers: 2, commD: hex.EncodeToString(commD2k[:]), dir: "s-t01000-4"},
		{name: "2KiB Lotus unsealed file", proof: "StackedDrg2KiBV1", prover: "f02", number: "18446744073709551615", staged: unsealed, size: 2048, layers: 2, commD: hex.EncodeToString(commD2k[:]), dir: "s-t02-18446744073709551615"},
		{name: "8MiB CC", proof: "StackedDrg8MiBV1_1", prover: "f01000", number: "42", size: 8 << 20, layers: 2, commD: zeroCommDHex(t, 8<<20), dir: "s-t01000-42", long: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.long && testing.Short() {
				t.Skip("8 MiB seals: run without -short")
			}
			root := t.TempDir()
			args := []string{"seal", "--proof", tc.proof, "--prover-id", tc.prover, "--sector-number", tc.number, "--ticket", ticket, "--out", root, "--cache-dir", cache}
			if tc.staged != "" {
				args = append(args, "--staged", tc.staged)
			}
			code, stdout, stderr := runCLI(t, nil, args...)
			require.Equal(t, 0, code, stderr)
			lines := sealedLines(t, stdout)
			require.Len(t, lines, 1, stdout)
			got := lines[0]
			dir := filepath.Join(root, "cache", tc.dir)
			require.Equal(t, sealedLine{tc.dir, tc.commD, got.replicaID, dir}, got)

			st, err := os.Stat(filepath.Join(dir, "sc-02-data-tree-d.dat"))
			require.NoError(t, err)
			require.EqualValues(t, 2*tc.size-32, st.Size())
			out, err := os.ReadFile(filepath.Join(dir, "pc1out.json"))
			require.NoError(t, err)
			var p1 struct {
				RegisteredProof string `json:"registered_proof"`
			}
			require.NoError(t, json.Unmarshal(out, &p1))
			require.Equal(t, tc.proof, p1.RegisteredProof)

			ref := t.TempDir()
			code, _, stderr = runCLI(t, nil, "seal", "--proof", tc.proof, "--replica-id", got.replicaID, "--out", ref, "--cache-dir", cache)
			require.Equal(t, 0, code, stderr)
			requireSameLayers(t, dir, filepath.Join(ref, "sector-0"), tc.layers)
		})
	}
}

// TestSealJobs seals three sectors of a jobs file in one batch (two
// hashing at once) and runs it again, which finds them complete.
func TestSealJobs(t *testing.T) {
	work := t.TempDir()
	data := paddedData(2, 2048)
	require.NoError(t, os.MkdirAll(filepath.Join(work, "unsealed"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(work, "unsealed", "s-t01000-8"), lotusUnsealed(data), 0o644))
	commD, err := sdr.CommD(bytes.NewReader(data), 2048/32)
	require.NoError(t, err)
	ticket := strings.Repeat("07", 32)
	jobs := `[
	 {"prover_id": "f01000", "sector_number": 7, "ticket": "` + ticket + `"},
	 {"prover_id": "f01000", "sector_number": 8, "ticket": "` + ticket + `", "staged": "unsealed/s-t01000-8", "comm_d": "` + hex.EncodeToString(commD[:]) + `"},
	 {"prover_id": "f01001", "sector_number": 7, "ticket": "` + ticket + `"}
	]`
	jobsFile := filepath.Join(work, "jobs.json")
	require.NoError(t, os.WriteFile(jobsFile, []byte(jobs), 0o644))
	root, cache := filepath.Join(work, "root"), t.TempDir()
	report := filepath.Join(work, "report.json")
	args := []string{"seal", "--proof", "StackedDrg2KiBV1_1", "--jobs", jobsFile, "--out", root, "--cache-dir", cache, "--parallel", "2", "--report", report}

	code, stdout, stderr := runCLI(t, nil, args...)
	require.Equal(t, 0, code, stderr)
	lines := sealedLines(t, stdout)
	require.Len(t, lines, 3, stdout)
	zero := zeroCommDHex(t, 2048)
	for i, want := range []struct{ name, commD string }{
		{"s-t01000-7", zero}, {"s-t01000-8", hex.EncodeToString(commD[:])}, {"s-t01001-7", zero},
	} {
		require.Equal(t, want.name, lines[i].name)
		require.Equal(t, want.commD, lines[i].commD)
		require.Equal(t, filepath.Join(root, "cache", want.name), lines[i].dir)
		for _, f := range []string{"sc-02-data-tree-d.dat", "sc-02-data-layer-1.dat", "sc-02-data-layer-2.dat", "pc1out.json"} {
			require.FileExists(t, filepath.Join(lines[i].dir, f))
		}
	}
	require.NotEqual(t, lines[0].replicaID, lines[2].replicaID, "same sector number and ticket, another miner")
	var rep struct {
		Sectors []struct {
			ReplicaID string `json:"replica_id"`
			Dir       string `json:"dir"`
		} `json:"sectors"`
	}
	raw, err := os.ReadFile(report)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &rep))
	require.Len(t, rep.Sectors, 3)
	for i, s := range rep.Sectors {
		require.Equal(t, lines[i].replicaID, s.ReplicaID)
		require.Equal(t, lines[i].dir, s.Dir)
	}

	code, again, stderr := runCLI(t, nil, args...)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, 3, strings.Count(again, "already complete"), again)
	require.Equal(t, lines, sealedLines(t, again))
}

// snapshotDir lists every path under root with its size (directories as
// -1), or nothing when root does not exist.
func snapshotDir(t *testing.T, root string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
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
	})
	if !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	return out
}

// TestSealInputsBadInput drives bad sector inputs through run(): the exit
// status, one line on stderr with the key phrase, nothing on stdout, and
// the work directory (storage root, staged files, jobs file) untouched.
func TestSealInputsBadInput(t *testing.T) {
	// Generated first: the row that gets to it would otherwise also print
	// the generation's start and end lines, besides its one error line.
	cache := t.TempDir()
	code, _, stderr := runCLI(t, nil, "parents", "--proof", "StackedDrg2KiBV1_1", "--cache-dir", cache)
	require.Equal(t, 0, code, stderr)
	ticket := strings.Repeat("11", 32)
	good := paddedData(3, 2048)
	unpadded := append([]byte(nil), good...)
	unpadded[32*9+31] = 0xff
	for _, tc := range []struct {
		name  string
		files map[string][]byte // written under the work directory first
		args  []string          // after seal --proof StackedDrg2KiBV1_1 --out W/root --cache-dir C; "W/" is the work directory
		vars  map[string]string
		code  int
		msg   string
	}{
		{name: "secp address", args: []string{"--prover-id", "f1abcdef", "--sector-number", "1", "--ticket", ticket}, code: 2,
			msg: `--prover-id: prover id "f1abcdef": only id addresses (f0<id> or t0<id>) name a miner`},
		{name: "id address without id", args: []string{"--prover-id", "f0", "--sector-number", "1", "--ticket", ticket}, code: 2,
			msg: `--prover-id: prover id "f0": an id address is f0 or t0 followed by the actor id in decimal`},
		{name: "bare actor id", args: []string{"--prover-id", "1000", "--sector-number", "1", "--ticket", ticket}, code: 2,
			msg: `write an actor id as its id address, f01000`},
		{name: "short hex prover id", args: []string{"--prover-id", "e807", "--sector-number", "1", "--ticket", ticket}, code: 2,
			msg: `--prover-id: prover id "e807": want 32 bytes (64 hex digits), got 2 bytes`},
		{name: "short ticket", args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", "0011"}, code: 2,
			msg: `--ticket: hex id "0011": want 32 bytes (64 hex digits), got 2 bytes`},
		{name: "long ticket", args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket + "00"}, code: 2,
			msg: `--ticket: hex id "` + ticket + `00": want 32 bytes (64 hex digits), got 33 bytes`},
		{name: "ticket not hex", args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", strings.Repeat("g", 64)}, code: 2,
			msg: `--ticket: hex id "` + strings.Repeat("g", 64) + `": encoding/hex: invalid byte`},
		{name: "bad comm_d", args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket, "--comm-d", "00"}, code: 2,
			msg: `--comm-d: hex id "00": want 32 bytes`},
		{name: "negative sector number", args: []string{"--prover-id", "f01000", "--sector-number", "-1", "--ticket", ticket}, code: 2,
			msg: `invalid value "-1" for flag -sector-number`},
		{name: "no ticket", args: []string{"--prover-id", "f01000", "--sector-number", "1"}, code: 2,
			msg: `--prover-id without --ticket: a sector needs --prover-id, --sector-number and --ticket`},
		{name: "staged without the rest", args: []string{"--staged", "W/staged"}, code: 2,
			msg: `--staged without --prover-id`},
		{name: "empty staged", args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket, "--staged", ""}, code: 2,
			msg: `--staged is empty: leave it out for a committed-capacity sector`},
		{name: "inputs and replica id", args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket, "--replica-id", ticket}, code: 2,
			msg: `--prover-id and --replica-id both given`},
		{name: "jobs and sectors", files: map[string][]byte{"jobs.json": []byte("[]")}, args: []string{"--jobs", "W/jobs.json", "--sectors", "2"}, code: 2,
			msg: `--jobs and --sectors both given`},
		{name: "jobs and prover id", files: map[string][]byte{"jobs.json": []byte("[]")}, args: []string{"--jobs", "W/jobs.json", "--prover-id", "f01000"}, code: 2,
			msg: `--jobs and --prover-id both given: put every sector in the jobs file`},
		{name: "raw porep id", args: []string{"--proof", "", "--sector-size", "2KiB", "--porep-id", strings.Repeat("00", 32), "--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket}, code: 2,
			msg: `needs a registered proof`},
		{name: "staged missing", args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket, "--staged", "W/nope"}, code: 1,
			msg: `sector 0 (s-t01000-1): staged file W/nope: no such file or directory`},
		{name: "staged short", files: map[string][]byte{"staged": good[:2016]}, args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket, "--staged", "W/staged"}, code: 1,
			msg: `sector 0 (s-t01000-1): staged file W/staged is 2016 bytes, want 2048 bytes (the 2KiB sector, Fr32-padded as Lotus' unsealed file holds it)`},
		{name: "staged too long", files: map[string][]byte{"staged": append(append([]byte(nil), good...), good...)}, args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket, "--staged", "W/staged"}, code: 1,
			msg: `staged file W/staged is 4096 bytes, want 2048 bytes (the 2KiB sector, Fr32-padded as Lotus' unsealed file holds it); the 2048 bytes after the sector are not Lotus' unsealed-file trailer`},
		{name: "staged is a directory", args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket, "--staged", "W"}, code: 1,
			msg: `staged file W is a directory`},
		{name: "staged not padded", files: map[string][]byte{"staged": unpadded}, args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket, "--staged", "W/staged"}, code: 1,
			msg: `staged file W/staged: node 9 (bytes 288..319) is not Fr32-padded: its last byte is 0xff`},
		{name: "comm_d not the pieces'", files: map[string][]byte{"staged": good}, args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket, "--staged", "W/staged", "--comm-d", ticket}, code: 1,
			msg: `sector 0 (s-t01000-1): comm_d of the staged data is`},
		{name: "pool too small", args: []string{"--prover-id", "f01000", "--sector-number", "1", "--ticket", ticket, "--pool-size", "1KiB"}, code: 1,
			msg: `pool size 1.0 KiB is outside [4.0 KiB, 4.0 KiB]`},
		{name: "jobs empty path", args: []string{"--jobs", ""}, code: 2,
			msg: `--jobs is empty: give the jobs file's path`},
		{name: "jobs missing", args: []string{"--jobs", "W/nope.json"}, code: 1,
			msg: `--jobs: open W/nope.json: no such file or directory`},
		{name: "jobs not a list", files: map[string][]byte{"jobs.json": []byte(`{"prover_id": "f01000"}`)}, args: []string{"--jobs", "W/jobs.json"}, code: 2,
			msg: `--jobs W/jobs.json: want a JSON list of sectors`},
		{name: "jobs bad address", files: map[string][]byte{"jobs.json": []byte(`[{"prover_id": "f01000", "sector_number": 1, "ticket": "` + ticket + `"}, {"prover_id": "f3xyz", "sector_number": 1, "ticket": "` + ticket + `"}]`)}, args: []string{"--jobs", "W/jobs.json"}, code: 2,
			msg: `--jobs W/jobs.json: sector #2: prover id "f3xyz": only id addresses`},
		{name: "jobs short ticket", files: map[string][]byte{"jobs.json": []byte(`[{"prover_id": "f01000", "sector_number": 1, "ticket": "ab"}]`)}, args: []string{"--jobs", "W/jobs.json"}, code: 2,
			msg: `--jobs W/jobs.json: sector #1: ticket: hex id "ab": want 32 bytes (64 hex digits), got 1 bytes`},
		{name: "jobs missing ticket", files: map[string][]byte{"jobs.json": []byte(`[{"prover_id": "f01000", "sector_number": 1}]`)}, args: []string{"--jobs", "W/jobs.json"}, code: 2,
			msg: `--jobs W/jobs.json: sector #1: missing ticket`},
		{name: "jobs same sector twice", files: map[string][]byte{"jobs.json": []byte(`[{"prover_id": "f01000", "sector_number": 1, "ticket": "` + ticket + `"}, {"prover_id": "t01000", "sector_number": 1, "ticket": "` + ticket + `"}]`)}, args: []string{"--jobs", "W/jobs.json"}, code: 1,
			msg: `sector 0 (s-t01000-1) and sector 1 (s-t01000-1) share the cache directory`},
		{name: "jobs staged missing", files: map[string][]byte{"jobs.json": []byte(`[{"prover_id": "f01000", "sector_number": 1, "ticket": "` + ticket + `", "staged": "nope"}]`)}, args: []string{"--jobs", "W/jobs.json"}, code: 1,
			msg: `staged file W/nope: no such file or directory`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			for name, data := range tc.files {
				require.NoError(t, os.WriteFile(filepath.Join(work, name), data, 0o644))
			}
			args := []string{"seal", "--proof", "StackedDrg2KiBV1_1", "--out", filepath.Join(work, "root"), "--cache-dir", cache}
			for _, a := range tc.args {
				if a == "W" || strings.HasPrefix(a, "W/") {
					a = work + a[1:]
				}
				args = append(args, a)
			}
			before := snapshotDir(t, work)
			code, stdout, stderr := runCLI(t, tc.vars, args...)
			require.Equal(t, tc.code, code, stderr)
			require.Contains(t, stderr, strings.ReplaceAll(tc.msg, "W", work))
			require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			require.Empty(t, stdout)
			require.Equal(t, before, snapshotDir(t, work), "nothing written")
		})
	}
}
