package vm

import "sync"

// fifoCache is a bounded map with first-in first-out eviction: O(1) per
// operation, safe for concurrent use. Eviction order depends only on
// insertion order, never on map iteration.
type fifoCache[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	items map[K]V
	ring  []K
	next  int
}

func newFIFOCache[K comparable, V any](max int) *fifoCache[K, V] {
	return &fifoCache[K, V]{max: max, items: make(map[K]V, max)}
}

func (c *fifoCache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	v, ok := c.items[k]
	c.mu.Unlock()
	return v, ok
}

func (c *fifoCache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		c.items[k] = v
		return
	}
	if len(c.ring) < c.max {
		c.ring = append(c.ring, k)
	} else {
		delete(c.items, c.ring[c.next])
		c.ring[c.next] = k
		c.next = (c.next + 1) % c.max
	}
	c.items[k] = v
}

func (c *fifoCache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
