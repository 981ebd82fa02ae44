package measure

import (
	"testing"

	"github.com/prometheus/procfs"
	"github.com/stretchr/testify/require"
)

func TestParseStatus(t *testing.T) {
	const full = "Name:\tpc1-tiered\nVmPeak:\t  999 kB\nVmHWM:\t   2048 kB\nVmRSS:\t 1536 kB\nRssAnon:\t    1024 kB\nRssFile:\t     512 kB\nRssShmem:\t       0 kB\nThreads:\t8\n"
	for _, tc := range []struct {
		name, text string
		want       MemPeaks
		err        string
	}{
		{name: "kernel's layout", text: full, want: MemPeaks{VmHWM: 2 << 20, RssAnon: 1 << 20, RssFile: 512 << 10}},
		{name: "no final newline", text: "VmHWM: 1 kB\nRssAnon: 2 kB\nRssFile: 3 kB", want: MemPeaks{VmHWM: 1 << 10, RssAnon: 2 << 10, RssFile: 3 << 10}},
		{name: "a field missing", text: "VmHWM: 1 kB\nRssAnon: 2 kB\n", err: "no VmHWM, RssAnon or RssFile"},
		{name: "not kB", text: "VmHWM: 1 MB\nRssAnon: 2 kB\nRssFile: 3 kB\n", err: `unexpected line "VmHWM: 1 MB"`},
		{name: "not a number", text: "VmHWM: x kB\nRssAnon: 2 kB\nRssFile: 3 kB\n", err: "unexpected line"},
		{name: "empty", text: "", err: "no VmHWM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatus([]byte(tc.text))
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestStatusReaderMatchesProcfs reads the live file twice through one
// reader (the second read starts again from the top) and against procfs's
// own parse: VmHWM only grows, and this test's memory barely moves.
func TestStatusReaderMatchesProcfs(t *testing.T) {
	r, err := openStatusReader()
	require.NoError(t, err)
	defer r.close()
	first, err := r.read()
	require.NoError(t, err)
	p, err := procfs.Self()
	require.NoError(t, err)
	st, err := p.NewStatus()
	require.NoError(t, err)
	second, err := r.read()
	require.NoError(t, err)
	require.Positive(t, first.VmHWM)
	require.Positive(t, first.RssAnon)
	require.LessOrEqual(t, first.VmHWM, st.VmHWM)
	require.LessOrEqual(t, st.VmHWM, second.VmHWM)
	require.InDelta(t, float64(st.RssAnon), float64(second.RssAnon), 8<<20)
	require.InDelta(t, float64(st.RssFile), float64(second.RssFile), 8<<20)
	// The sampler reads it every 20 ms for a whole seal: no garbage.
	require.Zero(t, testing.AllocsPerRun(100, func() {
		_, err := r.read()
		require.NoError(t, err)
	}))
}

// BenchmarkReadStatus compares the sampler's read with procfs's.
func BenchmarkReadStatus(b *testing.B) {
	b.Run("statusReader", func(b *testing.B) {
		r, err := openStatusReader()
		require.NoError(b, err)
		defer r.close()
		for b.Loop() {
			if _, err := r.read(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("procfs", func(b *testing.B) {
		for b.Loop() {
			p, err := procfs.Self()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.NewStatus(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
