package sdr

import (
	"crypto/sha256"
	"encoding/binary"
)

// ReplicaID derives a sector's replica id as the reference does:
// SHA-256(prover id || sector number as u64 big-endian || ticket || comm_d
// || porep id), trimmed to a field element like a label.
func ReplicaID(proverID [32]byte, sectorNumber uint64, ticket, commD, porepID [32]byte) [32]byte {
	var msg [32 + 8 + 32 + 32 + 32]byte
	copy(msg[0:], proverID[:])
	binary.BigEndian.PutUint64(msg[32:], sectorNumber)
	copy(msg[40:], ticket[:])
	copy(msg[72:], commD[:])
	copy(msg[104:], porepID[:])
	id := sha256.Sum256(msg[:])
	id[31] &= 0x3f
	return id
}
