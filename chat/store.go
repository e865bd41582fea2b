package chat

// Store is where a Device keeps its records: its prekey secrets (the device
// record), the ratchet state of each session, the outbox of envelopes not yet
// confirmed on chain, and the archive of plaintexts sent and opened.
//
// Reads go through one small interface per record kind. Every write goes
// through Commit, which applies a Batch atomically: after a crash, either
// every change of the batch is visible or none is. Records are opaque,
// versioned bytes made by this package; a store only keeps them (the file
// store also encrypts them). A missing record is ErrNotFound.
//
// A Store is used by one Device at a time.
type Store interface {
	DeviceStore
	ConversationStore
	OutboxStore
	ArchiveStore
	Commit(b *Batch) error
}

// DeviceStore reads the device record: prekey secrets and counters.
type DeviceStore interface {
	LoadDevice() ([]byte, error)
}

// ConversationStore reads the state record of a session.
type ConversationStore interface {
	LoadConversation(session [32]byte) ([]byte, error)
}

// OutboxStore reads the outbox of a session.
type OutboxStore interface {
	LoadOutboxRecord(session [32]byte, id EnvelopeID) ([]byte, error)
	// LoadOutbox returns every record of the session, in any order.
	LoadOutbox(session [32]byte) ([]Record, error)
}

// ArchiveStore reads the archive of a session.
type ArchiveStore interface {
	LoadArchiveRecord(session [32]byte, id MessageID) ([]byte, error)
	// LoadArchive returns every record of the session, in any order.
	LoadArchive(session [32]byte) ([]Record, error)
}

// Record is a stored outbox record (ID an EnvelopeID) or archive record
// (ID a MessageID).
type Record struct {
	ID   [16]byte
	Data []byte
}

// Batch is a set of writes that Commit applies atomically.
type Batch struct {
	// Device replaces the device record when not nil.
	Device        []byte
	Conversations []ConversationWrite
	Outbox        []RecordWrite
	Archive       []RecordWrite
}

// ConversationWrite replaces the state record of a session, or deletes it
// (Data nil).
type ConversationWrite struct {
	Session [32]byte
	Data    []byte
}

// RecordWrite puts an outbox or archive record, or deletes it (Data nil).
type RecordWrite struct {
	Session [32]byte
	ID      [16]byte
	Data    []byte
}
