// Command pc1-tiered runs Filecoin's PreCommit Phase 1 (SDR labeling) for
// many sectors at once through one shared, tiered memory pool.
//
// The command is thin: it parses flags, shows progress and prints reports;
// all logic lives in the packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// errUsage marks an error the user can fix by changing the command line; it
// exits with status 2 instead of 1.
var errUsage = errors.New("usage")

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Is(target error) bool {
	return target == errUsage
}

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// env is how the command reads its environment, so tests can supply one.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// stderrIsTerminal turns the live progress display (on stderr) on.
	stderrIsTerminal bool
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"seal", "label sectors through the shared pool and write their layer files", runSeal},
		{"parents", "generate or reuse a parent cache and print its path and digest", runParents},
		{"plan", "how many sectors fit this machine's RAM and NVMe, and how fast they label", runPlan},
		{"verify", "check sealed sectors' layer files by recomputing sampled (or all) labels", runVerify},
		{"bench", "sweep DRAM per sector from no sharing down through spill; write bench.csv/json/png/svg", runBench},
	}
}

func main() {
	ctx, stop := signalContext()
	defer stop()
	e := &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, stderrIsTerminal: isTerminal(os.Stderr)}
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) == runtime.NumCPU() {
		// Every core hashes (labeler.HashingCores stays NumCPU); two more
		// Ps let the goroutines that feed the hashing (layer writers, the
		// packer, the parent stream, the spill prefetcher) run without
		// waiting for a hasher to be preempted: a batch of 64 spilling
		// at 1.1 x S labeled 1.78M nodes/s with GOMAXPROCS=2 and 2.22M
		// with 4 on the 2-vCPU development VM.
		runtime.GOMAXPROCS(runtime.NumCPU() + 2)
	}
	stopProfiles, err := startProfiles(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pc1-tiered:", err)
		os.Exit(1)
	}
	code := run(ctx, e, os.Args[1:])
	stopProfiles()
	os.Exit(code)
}

// signalContext is canceled by the first SIGINT or SIGTERM, which asks the
// command to stop cleanly (a seal at its next block, resumable). The
// second one gets the signal's default action and ends the process at
// once: a command stuck where it does not look at its context (say, on a
// read a failing device never answers) must still stop when asked twice,
// and block-level resume makes that as safe as the first (a kill -9 is).
func signalContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}

// run executes one command line and returns the exit status: 0 on success,
// 1 on failure, 2 on a usage error. Errors are one line on stderr.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(e.stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, e, args[1:])
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				fmt.Fprintf(e.stderr, "pc1-tiered %s: %v\n", c.name, err)
				return 2
			default:
				fmt.Fprintf(e.stderr, "pc1-tiered %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(e.stderr, "pc1-tiered: unknown command %q; run pc1-tiered help\n", args[0])
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: pc1-tiered <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run pc1-tiered <command> -h for a command's flags.")
}

// newFlagSet makes a flag set whose errors come back as usage errors
// instead of exiting the process.
func newFlagSet(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("pc1-tiered "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	// The flag package prints its own message for a bad flag; silence it and
	// return one line instead.
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return err
	}
	if err != nil {
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}
