package sealer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pc1-tiered/pc1-tiered/sdr"
)

// jobJSON is one sector of a jobs file. Pointers tell a missing field from
// a zero one: a forgotten sector number or ticket must not seal sector 0
// with an all-zero ticket.
type jobJSON struct {
	ProverID     *string `json:"prover_id"`
	SectorNumber *uint64 `json:"sector_number"`
	Ticket       *string `json:"ticket"`
	Staged       string  `json:"staged"`
	CommD        string  `json:"comm_d"`
	CacheDir     string  `json:"cache_dir"`
}

// ParseJobs reads a jobs file: a JSON list with one object per sector,
//
//	[{"prover_id": "f01000", "sector_number": 7, "ticket": "<64 hex digits>",
//	  "staged": "unsealed/s-t01000-7", "comm_d": "<64 hex digits>"}]
//
// prover_id, sector_number and ticket are required; staged (absent: a
// committed-capacity sector), comm_d (the pieces' comm_d to check) and
// cache_dir (instead of ROOT/cache/s-t0<actor>-<number>) are optional.
// Relative paths are taken from dir, the jobs file's directory. Unknown
// fields are an error, so a misspelt one is not silently ignored.
func ParseJobs(data []byte, dir string) ([]SectorInput, error) {
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '[' {
		return nil, errors.New("want a JSON list of sectors, [{\"prover_id\": ..., \"sector_number\": ..., \"ticket\": ...}, ...]")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var jobs []jobJSON
	if err := dec.Decode(&jobs); err != nil {
		return nil, fmt.Errorf("want a JSON list of sectors: %w", err)
	}
	if dec.More() {
		return nil, errors.New("want one JSON list of sectors, found more after it")
	}
	if len(jobs) == 0 {
		return nil, errors.New("the list holds no sector")
	}
	path := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	out := make([]SectorInput, len(jobs))
	for i, j := range jobs {
		var missing []string
		if j.ProverID == nil {
			missing = append(missing, "prover_id")
		}
		if j.SectorNumber == nil {
			missing = append(missing, "sector_number")
		}
		if j.Ticket == nil {
			missing = append(missing, "ticket")
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("sector #%d: missing %s", i+1, strings.Join(missing, ", "))
		}
		in := SectorInput{SectorNumber: *j.SectorNumber, Staged: path(j.Staged), CacheDir: path(j.CacheDir)}
		var err error
		if in.ProverID, err = ParseProverID(*j.ProverID); err != nil {
			return nil, fmt.Errorf("sector #%d: %w", i+1, err)
		}
		if in.Ticket, err = sdr.ParseHex32(*j.Ticket); err != nil {
			return nil, fmt.Errorf("sector #%d: ticket: %w", i+1, err)
		}
		if j.CommD != "" {
			c, err := sdr.ParseHex32(j.CommD)
			if err != nil {
				return nil, fmt.Errorf("sector #%d: comm_d: %w", i+1, err)
			}
			in.WantCommD = &c
		}
		out[i] = in
	}
	return out, nil
}
