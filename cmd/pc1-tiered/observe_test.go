package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSealObserversAndLockstep runs seal with JSON logs, a metrics
// endpoint and lockstep pairs: the logs parse, the layers equal a plain
// run's, and a taken metrics address or a bad log format fails at once.
func TestSealObserversAndLockstep(t *testing.T) {
	cache := t.TempDir()
	base := []string{"seal", "--sector-size", "64KiB", "--layers", "2", "--sectors", "2", "--parallel", "2", "--block-size", "4KiB", "--cache-dir", cache}
	plain := t.TempDir()
	code, _, stderr := runCLI(t, nil, append(base, "--out", plain, "--lockstep", "1")...)
	require.Equal(t, 0, code, stderr)

	out := t.TempDir()
	code, stdout, stderr := runCLI(t, nil, append(base, "--out", out, "--lockstep", "2", "--log-format", "json", "--metrics-addr", "127.0.0.1:0")...)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "lockstep 2")
	var msgs []string
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		var line map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line), "log line %q", sc.Text())
		msgs = append(msgs, line["msg"].(string))
	}
	require.Contains(t, msgs, "batch start")
	require.Contains(t, msgs, "layer done")
	require.Contains(t, msgs, "batch done")
	for s := range 2 {
		sector := fmt.Sprintf("sector-%d", s)
		requireSameLayers(t, filepath.Join(out, sector), filepath.Join(plain, sector), 2)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	code, _, stderr = runCLI(t, nil, append(base, "--out", t.TempDir(), "--metrics-addr", l.Addr().String())...)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--metrics-addr")
	require.Contains(t, stderr, "address already in use")
	code, _, stderr = runCLI(t, nil, append(base, "--out", t.TempDir(), "--log-format", "xml")...)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--log-format")
}
