package sealer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseJobs(t *testing.T) {
	ticket := strings.Repeat("11", 32)
	commD := strings.Repeat("22", 32)
	var wantTicket, wantCommD [32]byte
	for i := range wantTicket {
		wantTicket[i], wantCommD[i] = 0x11, 0x22
	}
	good := `[
	 {"prover_id": "f01000", "sector_number": 7, "ticket": "` + ticket + `", "staged": "unsealed/s-t01000-7", "comm_d": "` + commD + `"},
	 {"prover_id": "t01000", "sector_number": 0, "ticket": "0x` + ticket + `"},
	 {"prover_id": "` + strings.Repeat("ab", 32) + `", "sector_number": 9, "ticket": "` + ticket + `", "staged": "/abs/data", "cache_dir": "c9"}
	]`
	got, err := ParseJobs([]byte(good), "/jobs")
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, SectorInput{ProverID: ActorProverID(1000), SectorNumber: 7, Ticket: wantTicket, Staged: "/jobs/unsealed/s-t01000-7", WantCommD: &wantCommD}, got[0])
	require.Equal(t, SectorInput{ProverID: ActorProverID(1000), SectorNumber: 0, Ticket: wantTicket}, got[1], "absent staged is committed capacity; sector 0 given explicitly")
	require.Equal(t, "/abs/data", got[2].Staged)
	require.Equal(t, "/jobs/c9", got[2].CacheDir)
	_, isActor := got[2].ProverID.Actor()
	require.False(t, isActor)

	for _, tc := range []struct {
		name, in, errMsg string
	}{
		{"empty file", "", "want a JSON list of sectors"},
		{"object", `{"prover_id": "f01000"}`, "want a JSON list of sectors"},
		{"empty list", `[]`, "the list holds no sector"},
		{"not json", `[{`, "want a JSON list of sectors: unexpected EOF"},
		{"two lists", `[{"prover_id": "f01000", "sector_number": 1, "ticket": "` + ticket + `"}] []`, "found more after it"},
		{"unknown field", `[{"prover_id": "f01000", "sector_number": 1, "ticket": "` + ticket + `", "stagd": "x"}]`, `unknown field "stagd"`},
		{"missing all", `[{}]`, "sector #1: missing prover_id, sector_number, ticket"},
		{"missing number", `[{"prover_id": "f01000", "sector_number": 1, "ticket": "` + ticket + `"}, {"prover_id": "f01000", "ticket": "` + ticket + `"}]`, "sector #2: missing sector_number"},
		{"negative number", `[{"prover_id": "f01000", "sector_number": -1, "ticket": "` + ticket + `"}]`, "cannot unmarshal number -1"},
		{"bad address", `[{"prover_id": "f1abc", "sector_number": 1, "ticket": "` + ticket + `"}]`, "sector #1: prover id \"f1abc\": only id addresses"},
		{"short ticket", `[{"prover_id": "f01000", "sector_number": 1, "ticket": "0011"}]`, "sector #1: ticket: hex id \"0011\": want 32 bytes (64 hex digits), got 2 bytes"},
		{"bad comm_d", `[{"prover_id": "f01000", "sector_number": 1, "ticket": "` + ticket + `", "comm_d": "zz"}]`, "sector #1: comm_d: hex id \"zz\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseJobs([]byte(tc.in), "/jobs")
			require.ErrorContains(t, err, tc.errMsg)
		})
	}
}
