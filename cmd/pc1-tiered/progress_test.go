package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProgress(t *testing.T) {
	for _, terminal := range []bool{false, true} {
		var out bytes.Buffer
		p := NewProgress(&out, terminal, 2, 3, 1000)
		p.Start()
		p.Update(0, 2, 500)
		p.Update(1, 1, 10)
		p.Stop()
		if !terminal {
			require.Empty(t, out.String(), "quiet in a pipe")
			continue
		}
		require.Contains(t, out.String(), "sector 0  layer 2/3   50.0%")
		require.Contains(t, out.String(), "sector 1  layer 1/3    1.0%")
	}
}
