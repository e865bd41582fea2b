package crypto

import "sync"

// keyCache is a bounded map from encoded key bytes to a parsed key. Eviction
// is first-in first-out, which is enough for the intended use (a working set
// of keys smaller than the bound) and keeps every operation O(1).
type keyCache[V any] struct {
	mu    sync.Mutex
	max   int
	items map[string]V
	order []string // ring of keys in insertion order
	next  int
}

func newKeyCache[V any](max int) *keyCache[V] {
	return &keyCache[V]{max: max, items: make(map[string]V, max)}
}

// get looks up k without copying it (the compiler does not allocate for a
// map index with a converted byte slice).
func (c *keyCache[V]) get(k []byte) (V, bool) {
	c.mu.Lock()
	v, ok := c.items[string(k)]
	c.mu.Unlock()
	return v, ok
}

func (c *keyCache[V]) put(k []byte, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[string(k)]; ok {
		return
	}
	s := string(k)
	if len(c.order) < c.max {
		c.order = append(c.order, s)
	} else {
		delete(c.items, c.order[c.next])
		c.order[c.next] = s
		c.next = (c.next + 1) % c.max
	}
	c.items[s] = v
}

func (c *keyCache[V]) reset() {
	c.mu.Lock()
	clear(c.items)
	for i := range c.order {
		c.order[i] = ""
	}
	c.order = c.order[:0]
	c.next = 0
	c.mu.Unlock()
}

func (c *keyCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// Cache bounds. Public keys are looked up by chain nodes verifying many
// authors; secret keys belong to the few identities of one process.
const (
	publicKeyCacheSize = 4096
	secretKeyCacheSize = 16
)

var (
	kemPublicCache = newKeyCache[*KEMPublicKey](publicKeyCacheSize)
	kemSecretCache = newKeyCache[*KEMSecretKey](secretKeyCacheSize)
	dsaPublicCache = newKeyCache[*DSAPublicKey](publicKeyCacheSize)
	dsaSecretCache = newKeyCache[*DSASecretKey](secretKeyCacheSize)
)

// ResetKeyCache drops every parsed key kept by the byte-slice functions,
// including secret keys. Identities keep their own parsed keys.
func ResetKeyCache() {
	kemPublicCache.reset()
	kemSecretCache.reset()
	dsaPublicCache.reset()
	dsaSecretCache.reset()
	senderCache.reset()
}
