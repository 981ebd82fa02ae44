package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"time"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/sdr"
)

type parentsOutput struct {
	Path       string  `json:"path"`
	SHA256     string  `json:"sha256"`
	Nodes      uint64  `json:"nodes"`
	SectorSize uint64  `json:"sector_size"`
	Verified   bool    `json:"verified"`
	InManifest bool    `json:"in_manifest"`
	Generated  bool    `json:"generated"`
	Seconds    float64 `json:"seconds"`
}

func runParents(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "parents")
	var gf graphFlags
	gf.register(fs)
	cacheDir := fs.String("cache-dir", "", "parent cache directory (default $FIL_PROOFS_PARENT_CACHE or /var/tmp/filecoin-parents)")
	verify := fs.Bool("verify", true, "hash an existing cache and compare it with the embedded manifest")
	regenerate := fs.Bool("regenerate", false, "replace an existing cache file that has the wrong size or digest")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	spec, err := gf.resolve()
	if err != nil {
		return err
	}
	dir := parentCacheDir(e, *cacheDir)
	mode := blockio.VerifyAlways
	if !*verify {
		mode = blockio.VerifyNever
	}
	start := time.Now()
	// No sectors: only the parent cache's lines, if it is generated.
	progress := NewProgress(e.stderr, e.stderrIsTerminal, 0, 0, 0)
	info, err := blockio.EnsureParentCache(ctx, spec.graph, dir, blockio.ParentCacheOptions{
		Verify: mode, Regenerate: *regenerate, OnWait: e.onWait,
		OnGenerate: progress.ParentCache(spec.String(), filepath.Join(dir, sdr.ParentCacheFileName(spec.graph))),
	})
	progress.Stop()
	if err != nil {
		return err
	}
	return json.NewEncoder(e.stdout).Encode(parentsOutput{
		Path:       info.Path,
		SHA256:     digestHex(info.SHA256),
		Nodes:      info.Nodes,
		SectorSize: info.SectorSize,
		Verified:   info.Verified,
		InManifest: info.InManifest,
		Generated:  info.Generated,
		Seconds:    time.Since(start).Seconds(),
	})
}

// digestHex is the digest in hex, or empty when the file was not hashed.
func digestHex(d [32]byte) string {
	if d == ([32]byte{}) {
		return ""
	}
	return hex.EncodeToString(d[:])
}
