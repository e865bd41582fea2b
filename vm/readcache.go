package vm

import (
	"sync"

	"github.com/luxfi/database"
)

// readCacheSize bounds the entries of a readCache; it is cleared when full.
const readCacheSize = 1 << 15

// readCache is a read-through cache over a database that the cache's users
// never write through (they write to a versiondb overlay on top of it). It
// serves repeated reads of the same keys (an author's identity, a session)
// from memory during one block's execution or between two accepted blocks
// in the mempool overlay.
//
// It is only sound while the database below does not change, so its owner
// drops it whenever that can happen: the mempool overlay's cache at every
// accepted block, and a block's cache when the block is accepted (its
// overlay and its children's are then re-pointed at the base database). A
// processing block's parent state does not change before the block is
// decided: the base changes only by accepting the block's ancestors, after
// which its overlay no longer reads through this cache.
type readCache struct {
	database.Database

	mu     sync.Mutex
	values map[string][]byte // nil value: known absent
}

func newReadCache(db database.Database) *readCache {
	return &readCache{Database: db, values: make(map[string][]byte)}
}

func (c *readCache) Get(key []byte) ([]byte, error) {
	c.mu.Lock()
	v, ok := c.values[string(key)]
	c.mu.Unlock()
	if ok {
		if v == nil {
			return nil, database.ErrNotFound
		}
		return v, nil
	}
	v, err := c.Database.Get(key)
	switch err {
	case nil:
		if v == nil {
			v = []byte{}
		}
	case database.ErrNotFound:
		v = nil
	default:
		return nil, err
	}
	c.mu.Lock()
	if len(c.values) >= readCacheSize {
		clear(c.values)
	}
	c.values[string(key)] = v
	c.mu.Unlock()
	if v == nil {
		return nil, database.ErrNotFound
	}
	return v, nil
}

func (c *readCache) Has(key []byte) (bool, error) {
	_, err := c.Get(key)
	if err == database.ErrNotFound {
		return false, nil
	}
	return err == nil, err
}

// Writes are not expected; keep the cache coherent if they happen.
func (c *readCache) Put(key, value []byte) error {
	c.mu.Lock()
	delete(c.values, string(key))
	c.mu.Unlock()
	return c.Database.Put(key, value)
}

func (c *readCache) Delete(key []byte) error {
	c.mu.Lock()
	delete(c.values, string(key))
	c.mu.Unlock()
	return c.Database.Delete(key)
}
