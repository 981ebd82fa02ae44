package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pc1-tiered/pc1-tiered/sdr"
	"github.com/stretchr/testify/require"
)

// runMainEnv makes the test binary run the command itself (TestMain), so
// tests can kill a real pc1-tiered process.
const runMainEnv = "PC1_TIERED_RUN_MAIN"

// stuckEnv makes the test binary act as a command that, once asked to
// stop, never looks at its context again (TestSecondSignalStops).
const stuckEnv = "PC1_TIERED_STUCK"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	if os.Getenv(stuckEnv) == "1" {
		ctx, stop := signalContext()
		defer stop()
		fmt.Println("ready")
		<-ctx.Done()
		fmt.Println("asked to stop")
		time.Sleep(time.Hour)
		return
	}
	os.Exit(m.Run())
}

// TestSecondSignalStops checks that a command stuck after the first
// SIGTERM (which it caught) is ended by the next one.
func TestSecondSignalStops(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), stuckEnv+"=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	lines := bufio.NewScanner(out)
	require.True(t, lines.Scan())
	require.Equal(t, "ready", lines.Text())
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.True(t, lines.Scan())
	require.Equal(t, "asked to stop", lines.Text(), "the first signal is the command's to handle")
	go func() { done <- cmd.Wait() }()
	// The handler is released just after the context is canceled: a
	// signal sent before that is still caught, so send until one is not.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			require.ErrorIs(t, err, os.ErrProcessDone)
		}
		select {
		case err := <-done:
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			status := exit.Sys().(syscall.WaitStatus)
			require.True(t, status.Signaled(), "ended by the signal, not by its own exit (%v)", err)
			require.Equal(t, syscall.SIGTERM, status.Signal())
			return
		case <-deadline:
			cmd.Process.Kill()
			t.Fatal("a stuck command outlived repeated SIGTERMs")
		case <-tick.C:
		}
	}
}

// TestSealSurvivesKill kills a real seal with SIGKILL at random points
// (different layers, mid-block: the process is hashing when it dies), and
// once with SIGTERM, resuming it each time with the same command line;
// the final layer files must equal an uninterrupted run's.
func TestSealSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	spillDir := t.TempDir()
	for _, tc := range []struct {
		name  string
		extra []string
		// spillDir is the batch's spill directory, if it has one.
		spillDir string
	}{
		{name: "all in DRAM"},
		// 1.1 x S per sector: each job keeps the previous layer and 25
		// blocks of the one being written, and reads the rest of it from
		// the device.
		{name: "spilling", extra: []string{"--dram", "2253KiB"}},
		// One batch of both sectors: 8 KiB batch blocks, 256 a layer; 1 MiB
		// is 128 of them: a window of 16 and 112 of the expander layer's
		// 256 blocks in DRAM, the rest of both layers read back from the
		// spill files.
		{name: "batch, expander on the device", extra: []string{"--batch", "2", "--dram", "1MiB", "--spill-dir", spillDir}, spillDir: spillDir},
	} {
		t.Run(tc.name, func(t *testing.T) { testSealSurvivesKill(t, tc.extra, tc.spillDir) })
	}
}

// requireBatchSpilled checks a batch seal's report: it wrote spill files,
// kept only part of the expander layer in DRAM and read spilled pages
// back.
func requireBatchSpilled(t *testing.T, stdout string) {
	t.Helper()
	require.Contains(t, stdout, "spill files: ", "the batch wrote spill files")
	m := regexp.MustCompile(`per job (\d+) expander \+ (\d+) window blocks`).FindStringSubmatch(stdout)
	require.NotNil(t, m, stdout)
	exp, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	require.Greater(t, exp, 0, "part of the expander layer in DRAM")
	require.Less(t, exp, 256, "part of the expander layer on the device")
	m = regexp.MustCompile(`(\d+) pages read .*per node of a batch of 2\)`).FindStringSubmatch(stdout)
	require.NotNil(t, m, stdout)
	require.NotEqual(t, "0", m[1], "spilled pages were read back")
}

func testSealSurvivesKill(t *testing.T, extra []string, spillDir string) {
	cache := t.TempDir()
	args := append([]string{"seal", "--sector-size", "1MiB", "--layers", "3", "--sectors", "2", "--parallel", "2",
		"--block-size", "4KiB", "--cache-dir", cache}, extra...)
	ref := t.TempDir()
	code, stdout, stderr := runCLI(t, nil, append(args, "--out", ref)...)
	require.Equal(t, 0, code, stderr)
	if len(extra) > 0 {
		require.Contains(t, stdout, "spill reads", "the budget turns the spill tier on")
	}
	if spillDir != "" {
		requireBatchSpilled(t, stdout)
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("kill points drawn with seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	out := t.TempDir()
	progress := func(layer int) string {
		return filepath.Join(out, "sector-0", sdr.LayerFileName(layer)+".partial.progress")
	}
	kills := []struct {
		layer  int
		signal syscall.Signal
		// most is the largest number of blocks the process logs in the
		// layer before the signal (from its own start in that layer).
		most int
	}{{1, syscall.SIGKILL, 200}, {2, syscall.SIGKILL, 120}, {2, syscall.SIGTERM, 40}, {3, syscall.SIGKILL, 200}}
	for _, k := range kills {
		// Signal once sector 0's progress log of the layer holds this many
		// records (24 bytes each; 256 blocks make a layer). A log left by
		// the previous kill stays until the new process rewrites it, to one
		// record for the prefix it resumes from: the signal waits for that
		// rewrite (the log shrinks, or appears), so it is the new process's
		// own writes that trigger it, once its handlers are in place.
		// (The modification time catches a rewrite to the same size.)
		records := int64(1 + rng.IntN(k.most))
		before, beforeMod := int64(-1), time.Time{}
		if st, err := os.Stat(progress(k.layer)); err == nil {
			before, beforeMod = st.Size(), st.ModTime()
		}
		cmd := exec.Command(os.Args[0], append(args, "--out", out)...)
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		killed, rewritten := false, false
	poll:
		for {
			select {
			case err := <-done:
				t.Fatalf("seal ended (%v) before layer %d had %d blocks logged: %s", err, k.layer, records, errOut.String())
			default:
			}
			if st, err := os.Stat(progress(k.layer)); err == nil {
				rewritten = rewritten || before < 0 || st.Size() < before || !st.ModTime().Equal(beforeMod)
				if rewritten && st.Size() >= records*24 {
					require.NoError(t, cmd.Process.Signal(k.signal))
					killed = true
					break poll
				}
			}
			time.Sleep(100 * time.Microsecond)
		}
		require.True(t, killed)
		err := <-done
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		if k.signal == syscall.SIGTERM {
			require.Equal(t, 1, exit.ExitCode(), errOut.String())
			require.Contains(t, errOut.String(), "run the same command again to resume")
		} else {
			require.Equal(t, -1, exit.ExitCode(), "killed by a signal")
		}
		t.Logf("%v in layer %d after %d blocks", k.signal, k.layer, records)
		// Whatever carries a final name is complete and correct.
		for s := range 2 {
			for layer := 1; layer <= 3; layer++ {
				got, err := os.ReadFile(filepath.Join(out, fmt.Sprintf("sector-%d", s), sdr.LayerFileName(layer)))
				if err != nil {
					continue
				}
				want, err := os.ReadFile(filepath.Join(ref, fmt.Sprintf("sector-%d", s), sdr.LayerFileName(layer)))
				require.NoError(t, err)
				require.True(t, bytes.Equal(want, got), "sector %d layer %d has a final name but differs", s, layer)
			}
		}
		if spillDir != "" {
			// Spill files are anonymous: a killed seal leaves none.
			entries, err := os.ReadDir(spillDir)
			require.NoError(t, err)
			require.Empty(t, entries, "%v left files in the spill directory", k.signal)
		}
	}

	code, stdout, stderr = runCLI(t, nil, append(args, "--out", out)...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "resumed at layer 3")
	if spillDir != "" {
		// Resumed in layer 3: layer 2's spill files rebuilt from its
		// layer files, and read back.
		requireBatchSpilled(t, stdout)
	}
	for s := range 2 {
		for layer := 1; layer <= 3; layer++ {
			name := filepath.Join(fmt.Sprintf("sector-%d", s), sdr.LayerFileName(layer))
			want, err := os.ReadFile(filepath.Join(ref, name))
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(out, name))
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, got), "%s differs from the uninterrupted run", name)
		}
		entries, err := os.ReadDir(filepath.Join(out, fmt.Sprintf("sector-%d", s)))
		require.NoError(t, err)
		require.Len(t, entries, 4, "three layers and the metadata: no partial file or progress log left")
	}
}
