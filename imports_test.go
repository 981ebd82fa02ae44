// Package arch_test keeps the architecture honest. Imports flow one way,
// down this list; a package may import any package below it:
//
//	cmd/pc1-tiered   the command line
//	bench            sweeps and plots (the command line's only)
//	plan             the planning model
//	metrics          Prometheus metrics and logs of a running batch
//	sealer           the library: the one seal path (Label), real inputs, Lotus/Curio layout
//	labeler          hashing and the walk over layers
//	pool             the shared block pool
//	tier             where block bytes live: DRAM arena, spill policy and mechanism
//	blockio          files and the on-disk layout
//	blockio/uring    a raw io_uring ring on x/sys/unix (the tier's device reads)
//	measure          SHA-256 rate, /proc, page cache
//	sdr              pure math, imports none of them
//
// pool imports nothing of the project's; tier does not import pool (the
// labeler hands it the job's blocks), which keeps "which block" (pool) apart
// from "where its bytes are" (tier).
package arch_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/pc1-tiered/pc1-tiered/"

// layers lists the project's packages from the top of the flow down; a
// package may import those below it and sdr, never those above it.
var layers = []string{"cmd/pc1-tiered", "bench", "plan", "metrics", "sealer", "labeler", "pool", "tier", "blockio", "blockio/uring", "measure", "sdr"}

func rank(pkg string) int {
	for i, l := range layers {
		if pkg == l {
			return i
		}
	}
	return -1
}

func TestImportsFlowOneWay(t *testing.T) {
	for _, pkg := range layers {
		files, err := filepath.Glob(filepath.Join(pkg, "*.go"))
		require.NoError(t, err)
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") {
				continue // tests may reach across layers to build fixtures
			}
			f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
			require.NoError(t, err)
			for _, imp := range f.Imports {
				path := strings.Trim(imp.Path.Value, `"`)
				if !strings.HasPrefix(path, module) {
					continue
				}
				dep := strings.TrimPrefix(path, module)
				r := rank(dep)
				require.NotEqual(t, -1, r, "%s imports %s, which is not in the layer list", file, dep)
				if pkg == "sdr" {
					require.Failf(t, "sdr must stay pure", "%s imports %s", file, dep)
				}
				require.Greater(t, r, rank(pkg), "%s imports %s: imports must flow %s", file, dep, strings.Join(layers, " -> "))
			}
		}
	}
}

// TestLayerListIsComplete makes sure a new package is placed in the flow.
func TestLayerListIsComplete(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		if dir == "." {
			return nil
		}
		require.NotEqual(t, -1, rank(dir), "package %s is not in the import flow list", dir)
		return nil
	})
	require.NoError(t, err)
}
