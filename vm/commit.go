package vm

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"github.com/luxfi/database"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/block"
)

// ErrStateMismatch reports a block whose state commitment is not the one
// this node computed by executing it: the proposer's state (or this
// node's) diverged.
var ErrStateMismatch = errors.New("block's state commitment differs from the state this node computed")

// ErrBlockWrites reports a block whose state writes exceed
// config.MaxBlockWrites or config.MaxBlockWriteBytes: no database need
// commit it as one batch.
var ErrBlockWrites = errors.New("block writes too much state")

// commitDomain separates state commitments from every other SHA-256 use.
const commitDomain = "luxfi/session/v1/state"

// Operation codes of the write log.
const (
	opPut    byte = 1
	opDelete byte = 2
)

// commitDB is the seam through which a block's execution writes. It passes
// every call to the database beneath (the block's versiondb overlay) and
// hashes each Put and Delete, in call order, into the block's state
// commitment:
//
//	commitment = SHA-256("luxfi/session/v1/state" | previous [32] | height u64 | W1 | W2 | ...)
//	Put        = 0x01 | len(key) u32 | len(value) u32 | key | value
//	Delete     = 0x02 | len(key) u32 | key
//
// where previous is the parent block's commitment (for the genesis block,
// its parent ID: the SHA-256 of the genesis bytes) and keys are keys of the
// root database, namespace byte included. Package state writes every
// record through the database it is given, so every namespace, including
// records added later, is covered without state knowing about the hash.
// The writes of one block are a deterministic function of the block and
// its parent's state (execution reads no clock, randomness or map order),
// so every honest node computes the same commitment.
type commitDB struct {
	database.Database
	h   hash.Hash
	hdr [9]byte
	// inbox lists the inbox entries written, in order (InboxWatcher).
	inbox []state.InboxWrite
	// ops and bytes measure the writes against config.MaxBlockWrites and
	// config.MaxBlockWriteBytes (see overBudget).
	ops, bytes int
}

var _ database.Database = (*commitDB)(nil)

func newCommitDB(db database.Database, previous [block.CommitmentSize]byte, height uint64) *commitDB {
	c := &commitDB{Database: db, h: sha256.New()}
	c.h.Write([]byte(commitDomain))
	c.h.Write(previous[:])
	binary.BigEndian.PutUint64(c.hdr[:8], height)
	c.h.Write(c.hdr[:8])
	return c
}

func (c *commitDB) logPut(k, v []byte) {
	c.ops++
	c.bytes += config.WriteCost(len(k), len(v))
	if w, ok := state.InboxWriteOf(k); ok {
		c.inbox = append(c.inbox, w)
	}
	c.hdr[0] = opPut
	binary.BigEndian.PutUint32(c.hdr[1:5], uint32(len(k)))
	binary.BigEndian.PutUint32(c.hdr[5:9], uint32(len(v)))
	c.h.Write(c.hdr[:9])
	c.h.Write(k)
	c.h.Write(v)
}

func (c *commitDB) logDelete(k []byte) {
	c.ops++
	c.bytes += config.WriteCost(len(k), 0)
	c.hdr[0] = opDelete
	binary.BigEndian.PutUint32(c.hdr[1:5], uint32(len(k)))
	c.h.Write(c.hdr[:5])
	c.h.Write(k)
}

// Put implements database.KeyValueWriter.
func (c *commitDB) Put(k, v []byte) error {
	c.logPut(k, v)
	return c.Database.Put(k, v)
}

// Delete implements database.KeyValueDeleter.
func (c *commitDB) Delete(k []byte) error {
	c.logDelete(k)
	return c.Database.Delete(k)
}

// NewBatch returns a batch whose Put and Delete calls are logged when they
// are made (state writes directly today; this keeps the seam closed).
func (c *commitDB) NewBatch() database.Batch {
	return &commitBatch{Batch: c.Database.NewBatch(), c: c}
}

// sum returns the commitment of the writes so far.
// overBudget reports an error wrapping ErrBlockWrites when the writes so
// far exceed a block's bounds (defaultWriteBounds: config.MaxBlockWrites
// and MaxBlockWriteBytes). The count is of calls, so a key written twice
// counts twice: the batch the block commits (distinct keys) is never
// larger than what was counted.
func (c *commitDB) overBudget(b writeBounds) error {
	if c.ops > b.ops || c.bytes > b.bytes {
		return fmt.Errorf("%w: %d writes of %d bytes, at most %d and %d",
			ErrBlockWrites, c.ops, c.bytes, b.ops, b.bytes)
	}
	return nil
}

func (c *commitDB) sum() [block.CommitmentSize]byte {
	var out [block.CommitmentSize]byte
	c.h.Sum(out[:0])
	return out
}

type commitBatch struct {
	database.Batch
	c *commitDB
}

func (b *commitBatch) Put(k, v []byte) error {
	b.c.logPut(k, v)
	return b.Batch.Put(k, v)
}

func (b *commitBatch) Delete(k []byte) error {
	b.c.logDelete(k)
	return b.Batch.Delete(k)
}
