package chat

import (
	"bytes"
	"sync"
)

// MemoryStore is a Store in memory, for tests and for callers that keep
// nothing on disk. Commit copies what it keeps and loads return copies, so
// no caller can change a committed record in place.
type MemoryStore struct {
	mu            sync.Mutex
	device        []byte
	conversations map[[32]byte][]byte
	outbox        map[[32]byte]map[[16]byte][]byte
	archive       map[[32]byte]map[[16]byte][]byte
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		conversations: map[[32]byte][]byte{},
		outbox:        map[[32]byte]map[[16]byte][]byte{},
		archive:       map[[32]byte]map[[16]byte][]byte{},
	}
}

func clone(b []byte) []byte { return bytes.Clone(b) }

// LoadDevice implements DeviceStore.
func (m *MemoryStore) LoadDevice() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.device == nil {
		return nil, ErrNotFound
	}
	return clone(m.device), nil
}

// LoadConversation implements ConversationStore.
func (m *MemoryStore) LoadConversation(session [32]byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.conversations[session]
	if !ok {
		return nil, ErrNotFound
	}
	return clone(b), nil
}

// LoadOutbox implements OutboxStore.
func (m *MemoryStore) LoadOutbox(session [32]byte) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return records(m.outbox[session]), nil
}

// LoadOutboxRecord implements OutboxStore.
func (m *MemoryStore) LoadOutboxRecord(session [32]byte, id EnvelopeID) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.outbox[session][[16]byte(id)]
	if !ok {
		return nil, ErrNotFound
	}
	return clone(b), nil
}

// LoadArchive implements ArchiveStore.
func (m *MemoryStore) LoadArchive(session [32]byte) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return records(m.archive[session]), nil
}

// LoadArchiveRecord implements ArchiveStore.
func (m *MemoryStore) LoadArchiveRecord(session [32]byte, id MessageID) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.archive[session][[16]byte(id)]
	if !ok {
		return nil, ErrNotFound
	}
	return clone(b), nil
}

func records(m map[[16]byte][]byte) []Record {
	out := make([]Record, 0, len(m))
	for id, b := range m {
		out = append(out, Record{ID: id, Data: clone(b)})
	}
	return out
}

// Commit implements Store.
func (m *MemoryStore) Commit(b *Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b.Device != nil {
		m.device = clone(b.Device)
	}
	for _, c := range b.Conversations {
		if c.Data == nil {
			delete(m.conversations, c.Session)
			continue
		}
		m.conversations[c.Session] = clone(c.Data)
	}
	apply(m.outbox, b.Outbox)
	apply(m.archive, b.Archive)
	return nil
}

func apply(m map[[32]byte]map[[16]byte][]byte, writes []RecordWrite) {
	for _, w := range writes {
		if w.Data == nil {
			delete(m[w.Session], w.ID)
			continue
		}
		if m[w.Session] == nil {
			m[w.Session] = map[[16]byte][]byte{}
		}
		m[w.Session][w.ID] = clone(w.Data)
	}
}
