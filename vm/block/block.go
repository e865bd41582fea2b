// Package block defines the SessionVM block: its canonical bounded
// encoding and its ID. Execution lives in package execute and the
// consensus-facing lifecycle in package vm.
//
// # Wire format
//
//	version u8 (2) | parent [32] | height u64 | timestamp i64 (Unix ms) |
//	state commitment [32] | count u32 | count × signed transaction (see package tx)
//
// The state commitment binds the state the block produces: a hash chained
// over the parent's commitment and every write the block's execution makes,
// in order (package vm computes it; LLM.md gives the definition). A node
// refuses at Verify a block whose commitment differs from its own.
// Version 1 (no commitment) is refused.
//
// A block is at most config.MaxBlockSize bytes and holds at most
// config.MaxBlockTxs transactions. Parse refuses every other form
// (truncation, trailing bytes, oversize), so Parse(b.Bytes()) reproduces b
// and every accepted input re-encodes to itself.
//
// # ID
//
// The ID is a hash of the bytes, taken over the header and the hashes of
// the transactions:
//
//	ID = SHA-256(header bytes | ID of transaction 1 | ... | ID of transaction n)
//
// where a transaction's ID is SHA-256 of its bytes (package tx). The header
// has a fixed size and holds n, and the encoding is canonical, so two
// different blocks with the same ID would need a SHA-256 collision, as with
// SHA-256 of the whole encoding. Every parser computes the transaction IDs
// anyway; this form hashes each byte of a block once instead of twice,
// which at 3.7 KB per signed message is a large part of building and
// verifying a block.
package block

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/state/codec"
	"github.com/luxfi/session/vm/tx"
)

// Version is the only block version.
const Version = 2

// CommitmentSize is the size of the state commitment.
const CommitmentSize = 32

// HeaderSize is the encoded size of a block without transactions.
const HeaderSize = 1 + ids.IDLen + 8 + 8 + CommitmentSize + 4

// Errors of New and Parse.
var (
	ErrMalformed          = errors.New("malformed block")
	ErrTooLarge           = errors.New("block too large")
	ErrTooManyTxs         = errors.New("too many transactions in block")
	ErrUnsupportedVersion = errors.New("unsupported block version")
)

// Block is a parsed block. Its fields must not be modified.
type Block struct {
	ParentID  ids.ID
	Height    uint64
	Timestamp int64 // Unix milliseconds
	// StateCommitment commits to the state after the block (see package vm).
	StateCommitment [CommitmentSize]byte
	Txs             []*tx.Tx

	bytes []byte
	id    ids.ID
}

// New encodes a block.
func New(parent ids.ID, height uint64, timestamp int64, commitment [CommitmentSize]byte, txs []*tx.Tx) (*Block, error) {
	if len(txs) > config.MaxBlockTxs {
		return nil, fmt.Errorf("%w: %d, at most %d", ErrTooManyTxs, len(txs), config.MaxBlockTxs)
	}
	size := HeaderSize
	for _, t := range txs {
		size += t.Size()
	}
	if size > config.MaxBlockSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, size, config.MaxBlockSize)
	}
	w := codec.NewWriter(HeaderSize)
	w.U8(Version)
	w.Fixed(parent[:])
	w.U64(height)
	w.I64(timestamp)
	w.Fixed(commitment[:])
	w.U32(uint32(len(txs)))
	// bytes.Join allocates the block without zeroing it first (it is
	// overwritten at once); blocks run to megabytes.
	parts := make([][]byte, 0, 1+len(txs))
	parts = append(parts, w.B)
	for _, t := range txs {
		parts = append(parts, t.Bytes())
	}
	b := bytes.Join(parts, nil)
	return &Block{
		ParentID:        parent,
		Height:          height,
		Timestamp:       timestamp,
		StateCommitment: commitment,
		Txs:             txs,
		bytes:           b,
		id:              hashOf(b[:HeaderSize], txs),
	}, nil
}

// hashOf computes the ID of the block with this header and these
// transactions.
func hashOf(header []byte, txs []*tx.Tx) ids.ID {
	h := sha256.New()
	h.Write(header)
	for _, t := range txs {
		id := t.ID()
		h.Write(id[:])
	}
	var id ids.ID
	h.Sum(id[:0])
	return id
}

// Parse decodes a block. It copies b.
func Parse(b []byte) (*Block, error) {
	if len(b) > config.MaxBlockSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(b), config.MaxBlockSize)
	}
	b = bytes.Clone(b)
	r := codec.NewReader(b)
	if v := r.U8(); r.Err() == nil && v != Version {
		return nil, fmt.Errorf("%w: %d", ErrUnsupportedVersion, v)
	}
	blk := &Block{bytes: b}
	r.FixedInto(blk.ParentID[:])
	blk.Height = r.U64()
	blk.Timestamp = r.I64()
	r.FixedInto(blk.StateCommitment[:])
	n := r.Count(config.MaxBlockTxs, "transactions")
	if err := r.Err(); err != nil {
		if errors.Is(err, codec.ErrOversize) {
			return nil, fmt.Errorf("%w: %w", ErrTooManyTxs, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// Each transaction is larger than its header and signature, which
	// bounds n by the input before allocating.
	if n > r.Remaining()/(tx.HeaderSize) {
		return nil, fmt.Errorf("%w: %d transactions cannot fit in %d bytes", ErrMalformed, n, r.Remaining())
	}
	blk.Txs = make([]*tx.Tx, n)
	for i := range blk.Txs {
		t, err := tx.ParseFrom(r)
		if err != nil {
			return nil, fmt.Errorf("%w: transaction %d: %w", ErrMalformed, i, err)
		}
		blk.Txs[i] = t
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	blk.id = hashOf(b[:HeaderSize], blk.Txs)
	return blk, nil
}

// ID returns the block's ID: the hash of its bytes (see the package
// documentation).
func (b *Block) ID() ids.ID { return b.id }

// Bytes returns the encoding. Do not modify it.
func (b *Block) Bytes() []byte { return b.bytes }

// Time returns the timestamp as a time.Time.
func (b *Block) Time() time.Time { return time.UnixMilli(b.Timestamp) }
