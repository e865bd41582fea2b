package vmtest

import (
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/luxfi/database"
)

// FaultDB wraps a database and fails writes on demand with an error
// wrapping syscall.ENOSPC, as a full disk does. Every write operation
// counts: Put and Delete on the database, and Put, Delete and Write on its
// batches, so a fault can strike in the middle of building a batch or at
// its Write. A failed batch Write writes nothing (the wrapped database's
// batches are atomic). Reads are never affected.
type FaultDB struct {
	database.Database

	mu     sync.Mutex
	left   int // writes that still succeed; negative: no fault armed
	failed int
	ops    int
}

// NewFaultDB wraps db with no fault armed.
func NewFaultDB(db database.Database) *FaultDB { return &FaultDB{Database: db, left: -1} }

// FailAfter lets the next n write operations succeed and fails every one
// after them until Heal.
func (f *FaultDB) FailAfter(n int) {
	f.mu.Lock()
	f.left = n
	f.mu.Unlock()
}

// Heal disarms the fault.
func (f *FaultDB) Heal() {
	f.mu.Lock()
	f.left = -1
	f.mu.Unlock()
}

// Failed returns how many write operations failed so far.
func (f *FaultDB) Failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// Ops returns how many write operations were attempted so far.
func (f *FaultDB) Ops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

// ErrInjected is wrapped (with syscall.ENOSPC) by every injected fault.
var ErrInjected = errors.New("vmtest: injected write fault")

func (f *FaultDB) write(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops++
	switch {
	case f.left < 0:
		return nil
	case f.left > 0:
		f.left--
		return nil
	}
	f.failed++
	return fmt.Errorf("%w: %s: %w", ErrInjected, op, syscall.ENOSPC)
}

// Put implements database.KeyValueWriter.
func (f *FaultDB) Put(k, v []byte) error {
	if err := f.write("put"); err != nil {
		return err
	}
	return f.Database.Put(k, v)
}

// Delete implements database.KeyValueDeleter.
func (f *FaultDB) Delete(k []byte) error {
	if err := f.write("delete"); err != nil {
		return err
	}
	return f.Database.Delete(k)
}

// NewBatch implements database.Batcher.
func (f *FaultDB) NewBatch() database.Batch {
	return &faultBatch{Batch: f.Database.NewBatch(), f: f}
}

type faultBatch struct {
	database.Batch
	f *FaultDB
}

func (b *faultBatch) Put(k, v []byte) error {
	if err := b.f.write("batch put"); err != nil {
		return err
	}
	return b.Batch.Put(k, v)
}

func (b *faultBatch) Delete(k []byte) error {
	if err := b.f.write("batch delete"); err != nil {
		return err
	}
	return b.Batch.Delete(k)
}

func (b *faultBatch) Write() error {
	if err := b.f.write("batch write"); err != nil {
		return err
	}
	return b.Batch.Write()
}

func (b *faultBatch) Inner() database.Batch { return b }
