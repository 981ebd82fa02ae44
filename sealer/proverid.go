package sealer

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// ProverID is the 32-byte prover id that enters a sector's replica id. For
// a storage provider (a miner actor) it is the payload of the actor's id
// address, the actor id as an unsigned LEB128 varint, zero-padded to 32
// bytes: what filecoin-ffi's toProverID and go-state-types' MakeProverID
// pass to rust-fil-proofs. Actor 1000 is e8 07 00 .. 00.
type ProverID [32]byte

// ActorProverID is the prover id of the miner actor with id actor (the 1000
// of f01000).
func ActorProverID(actor uint64) ProverID {
	var p ProverID
	binary.PutUvarint(p[:], actor)
	return p
}

// Actor returns the actor id p encodes, and false when p is not an actor's
// prover id: a minimal varint followed by nothing but zeros.
func (p ProverID) Actor() (uint64, bool) {
	v, n := binary.Uvarint(p[:])
	var minimal [binary.MaxVarintLen64]byte
	if n <= 0 || n != binary.PutUvarint(minimal[:], v) {
		return 0, false
	}
	for _, b := range p[n:] {
		if b != 0 {
			return 0, false
		}
	}
	return v, true
}

// String writes an actor's prover id as its id address (f01000), any other
// prover id as 64 hex digits. ParseProverID reads either back.
func (p ProverID) String() string {
	if a, ok := p.Actor(); ok {
		return "f0" + strconv.FormatUint(a, 10)
	}
	return hex.EncodeToString(p[:])
}

// MarshalText writes p as String does.
func (p ProverID) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads p as ParseProverID does.
func (p *ProverID) UnmarshalText(text []byte) error {
	v, err := ParseProverID(string(text))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// ParseProverID reads a prover id written as a miner actor's id address,
// f0<id> (mainnet) or t0<id> (testnets; the id, not the network, makes the
// prover id), or as the raw 32 bytes in 64 hex digits with or without 0x.
// Other address kinds (f1, f2, f3, f4) name accounts, not miners: a
// miner's prover id always comes from its id address.
func ParseProverID(s string) (ProverID, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return ProverID{}, fmt.Errorf("prover id is empty: want a miner's id address such as f01000, or 32 bytes in 64 hex digits")
	}
	if len(t) >= 2 && (t[0] == 'f' || t[0] == 't') && t[1] >= '0' && t[1] <= '9' {
		if t[1] != '0' {
			return ProverID{}, fmt.Errorf("prover id %q: only id addresses (f0<id> or t0<id>) name a miner; look the miner's id address up (lotus state lookup)", s)
		}
		digits := t[2:]
		if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
			return ProverID{}, fmt.Errorf("prover id %q: an id address is f0 or t0 followed by the actor id in decimal, such as f01000", s)
		}
		a, err := strconv.ParseUint(digits, 10, 64)
		if err != nil {
			return ProverID{}, fmt.Errorf("prover id %q: actor id does not fit in 64 bits", s)
		}
		return ActorProverID(a), nil
	}
	h := strings.TrimPrefix(strings.TrimPrefix(t, "0x"), "0X")
	if len(h) <= 20 && strings.TrimLeft(h, "0123456789") == "" {
		return ProverID{}, fmt.Errorf("prover id %q: write an actor id as its id address, f0%s", s, h)
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return ProverID{}, fmt.Errorf("prover id %q: want a miner's id address such as f01000, or 64 hex digits: %w", s, err)
	}
	if len(b) != len(ProverID{}) {
		return ProverID{}, fmt.Errorf("prover id %q: want 32 bytes (64 hex digits), got %d bytes", s, len(b))
	}
	return ProverID(b), nil
}

// SectorName is the name Lotus and Curio give a sector in every storage
// directory (storiface.SectorName): s-t0<actor>-<number>, with t0 whatever
// the network.
func SectorName(actor, number uint64) string {
	return fmt.Sprintf("s-t0%d-%d", actor, number)
}
