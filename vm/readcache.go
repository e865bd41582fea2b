package vm

import (
	"bytes"
	"sync"

	"github.com/luxfi/database"
)

// Bounds of the base cache.
const (
	baseCacheEntries  = 1 << 16
	baseCacheMaxValue = 1 << 10 // larger values are not kept (presence still is)
)

// baseCache is a read-through cache of the accepted state: the base
// database as block execution and mempool admission read it. Repeated
// reads of the same keys (an author's identity, nonce, a session and its
// counter) then cost a map lookup instead of a database read.
//
// The base database changes only when a block is accepted, through one
// batch; apply replays that batch into the cache right after it is
// written, so the cache never serves a value the base no longer holds to
// block verification or building (which, like accept, run under the chain
// lock). Mempool admission reads it concurrently and may, for the instant
// between the write and the replay, see the state before the block; a
// transaction admitted on that view is re-checked when the pool is
// reconciled and by the builder.
//
// A miss reads the base and then stores what it read; a block accepted in
// between (its batch written, then applied, which skips keys the cache
// does not hold) would leave the value from before the block cached for
// good, and this node would execute the next blocks on it and refuse
// valid ones. So every write to the base moves gen, and a miss stores its
// read only if gen did not move while it read.
//
// Entries are evicted first in, first out; values above baseCacheMaxValue
// are not kept, but whether their key exists is. Safe for concurrent use.
type baseCache struct {
	database.Database // the base; writes bypass the cache (see apply)

	mu      sync.Mutex
	entries map[string]cacheEntry
	ring    []string
	next    int
	gen     uint64 // moved by every write to the base (apply, Put, Delete)
}

type cacheEntry struct {
	present bool   // the key exists
	loaded  bool   // value holds its value (present and small enough)
	value   []byte // owned by the cache; callers must not modify it
}

func newBaseCache(db database.Database) *baseCache {
	return &baseCache{Database: db, entries: make(map[string]cacheEntry)}
}

// lookup returns key's entry, if cached, and the generation to hand to
// fill after reading the base on a miss.
func (c *baseCache) lookup(key []byte) (cacheEntry, bool, uint64) {
	c.mu.Lock()
	e, ok := c.entries[string(key)]
	gen := c.gen
	c.mu.Unlock()
	return e, ok, gen
}

// fill stores e, read from the base at generation gen, unless the base
// was written since (the read may predate the write) or the key was
// cached meanwhile.
func (c *baseCache) fill(key []byte, e cacheEntry, gen uint64) {
	c.mu.Lock()
	if c.gen == gen {
		if _, ok := c.entries[string(key)]; !ok {
			c.store(key, e)
		}
	}
	c.mu.Unlock()
}

// store records e for key. Call with c.mu held.
func (c *baseCache) store(key []byte, e cacheEntry) {
	k := string(key)
	if _, ok := c.entries[k]; !ok {
		if len(c.ring) < baseCacheEntries {
			c.ring = append(c.ring, k)
		} else {
			delete(c.entries, c.ring[c.next])
			c.ring[c.next] = k
			c.next = (c.next + 1) % baseCacheEntries
		}
	}
	c.entries[k] = e
}

func entryFor(value []byte) cacheEntry {
	if len(value) > baseCacheMaxValue {
		return cacheEntry{present: true}
	}
	return cacheEntry{present: true, loaded: true, value: bytes.Clone(value)}
}

// Get implements database.KeyValueReader.
func (c *baseCache) Get(key []byte) ([]byte, error) {
	e, ok, gen := c.lookup(key)
	if ok && (e.loaded || !e.present) {
		if !e.present {
			return nil, database.ErrNotFound
		}
		return e.value, nil
	}
	v, err := c.Database.Get(key)
	switch {
	case err == nil:
		c.fill(key, entryFor(v), gen)
		return v, nil
	case err == database.ErrNotFound:
		c.fill(key, cacheEntry{}, gen)
		return nil, err
	default:
		return nil, err
	}
}

// Has implements database.KeyValueReader.
func (c *baseCache) Has(key []byte) (bool, error) {
	e, ok, gen := c.lookup(key)
	if ok {
		return e.present, nil
	}
	has, err := c.Database.Has(key)
	if err != nil {
		return false, err
	}
	c.fill(key, cacheEntry{present: has}, gen)
	return has, nil
}

// Put and Delete write through and keep the cache coherent.
func (c *baseCache) Put(key, value []byte) error {
	if err := c.Database.Put(key, value); err != nil {
		return err
	}
	return cacheWriter{c}.Put(key, value)
}

func (c *baseCache) Delete(key []byte) error {
	if err := c.Database.Delete(key); err != nil {
		return err
	}
	return cacheWriter{c}.Delete(key)
}

// apply updates the cache with a batch that was just written to the base.
func (c *baseCache) apply(b database.Batch) error {
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
	return b.Replay(cacheWriter{c})
}

// cacheWriter applies writes to the cache only.
type cacheWriter struct{ c *baseCache }

// Put updates a key the cache holds; keys nobody read stay out of it (most
// writes are write-once records: messages, inbox and index entries).
func (w cacheWriter) Put(key, value []byte) error {
	w.c.mu.Lock()
	w.c.gen++
	if _, ok := w.c.entries[string(key)]; ok {
		w.c.store(key, entryFor(value))
	}
	w.c.mu.Unlock()
	return nil
}

func (w cacheWriter) Delete(key []byte) error {
	w.c.mu.Lock()
	w.c.gen++
	if _, ok := w.c.entries[string(key)]; ok {
		w.c.store(key, cacheEntry{})
	}
	w.c.mu.Unlock()
	return nil
}
