package state

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/luxfi/database"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
)

// ---- participations: the sessions an identity accepted ----

// Participation is a session an identity takes part in (accepted, or
// created), listed by the position of the session's creation.
type Participation struct {
	Position uint64
	Session  ids.ID
}

func participKey(id crypto.SessionID, pos uint64) []byte {
	k := SessionIDKey(id)
	return binary.BigEndian.AppendUint64(cat(k[:]), pos)
}

// AddParticipation lists session (created at pos) for id.
func (s *State) AddParticipation(id crypto.SessionID, pos uint64, session ids.ID) error {
	return s.particips().Put(participKey(id, pos), session[:])
}

// RemoveParticipation unlists the session created at pos for id.
func (s *State) RemoveParticipation(id crypto.SessionID, pos uint64) error {
	return s.particips().Delete(participKey(id, pos))
}

// Participations returns up to limit sessions id takes part in, created
// after position after, in chain order.
func (s *State) Participations(id crypto.SessionID, after uint64, limit int) ([]Participation, error) {
	if limit <= 0 || after == ^uint64(0) {
		return nil, nil
	}
	k := SessionIDKey(id)
	it := s.particips().NewIteratorWithStartAndPrefix(participKey(id, after+1), k[:])
	defer it.Release()
	var out []Participation
	for len(out) < limit && it.Next() {
		key, v := it.Key(), it.Value()
		if len(key) != SessionIDSize+8 || len(v) != ids.IDLen {
			return nil, fmt.Errorf("%w: participation entry", ErrCorrupt)
		}
		out = append(out, Participation{Position: binary.BigEndian.Uint64(key[SessionIDSize:]), Session: ids.ID(v)})
	}
	return out, it.Error()
}

// ---- message requests ----

// Request is a pending message request: the latest session of Creator
// that lists the recipient, who has not answered it.
type Request struct {
	Creator  crypto.SessionID
	Session  ids.ID
	Position uint64 // of the session's creation
}

func pairKey(a, b crypto.SessionID) []byte {
	ka, kb := SessionIDKey(a), SessionIDKey(b)
	return cat(ka[:], kb[:])
}

// PutRequest records (or replaces) creator's request to recipient.
func (s *State) PutRequest(recipient crypto.SessionID, r Request) error {
	v := binary.BigEndian.AppendUint64(append(make([]byte, 0, ids.IDLen+8), r.Session[:]...), r.Position)
	return s.requests().Put(pairKey(recipient, r.Creator), v)
}

// GetRequest returns creator's pending request to recipient, if any.
func (s *State) GetRequest(recipient, creator crypto.SessionID) (Request, bool, error) {
	v, err := s.requests().Get(pairKey(recipient, creator))
	if errors.Is(err, database.ErrNotFound) {
		return Request{}, false, nil
	}
	if err != nil {
		return Request{}, false, err
	}
	if len(v) != ids.IDLen+8 {
		return Request{}, false, fmt.Errorf("%w: request entry", ErrCorrupt)
	}
	return Request{Creator: creator, Session: ids.ID(v[:ids.IDLen]), Position: binary.BigEndian.Uint64(v[ids.IDLen:])}, true, nil
}

// DeleteRequest removes creator's request to recipient.
func (s *State) DeleteRequest(recipient, creator crypto.SessionID) error {
	return s.requests().Delete(pairKey(recipient, creator))
}

// DeleteRequestFor removes creator's request to recipient if it is for
// session (a newer request from the same creator stays).
func (s *State) DeleteRequestFor(recipient, creator crypto.SessionID, session ids.ID) error {
	r, ok, err := s.GetRequest(recipient, creator)
	if err != nil || !ok || r.Session != session {
		return err
	}
	return s.DeleteRequest(recipient, creator)
}

// Requests returns up to limit pending requests to recipient, by creator
// Session ID, after the given creator (nil: from the first).
func (s *State) Requests(recipient crypto.SessionID, after *crypto.SessionID, limit int) ([]Request, error) {
	if limit <= 0 {
		return nil, nil
	}
	rk := SessionIDKey(recipient)
	start := rk[:]
	if after != nil {
		start = append(pairKey(recipient, *after), 0)
	}
	it := s.requests().NewIteratorWithStartAndPrefix(start, rk[:])
	defer it.Release()
	var out []Request
	for len(out) < limit && it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != 2*SessionIDSize || len(v) != ids.IDLen+8 {
			return nil, fmt.Errorf("%w: request entry", ErrCorrupt)
		}
		creator, err := SessionIDFromKey(k[SessionIDSize:])
		if err != nil {
			return nil, err
		}
		out = append(out, Request{Creator: creator, Session: ids.ID(v[:ids.IDLen]), Position: binary.BigEndian.Uint64(v[ids.IDLen:])})
	}
	return out, it.Error()
}

// pruneRequests removes the request entries of a session that still point
// at it (retention of a request).
func (s *State) pruneRequests(session ids.ID) error {
	sess, err := s.GetSession(session)
	if errors.Is(err, database.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, p := range sess.Participants[1:] {
		if err := s.DeleteRequestFor(p, sess.Creator, session); err != nil {
			return err
		}
	}
	return nil
}

// ---- contacts ----

// Contact returns owner's status for peer (0: none).
func (s *State) Contact(owner, peer crypto.SessionID) (uint8, error) {
	v, err := s.contacts().Get(pairKey(owner, peer))
	if errors.Is(err, database.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 1 || v[0] == 0 || v[0] > 2 {
		return 0, fmt.Errorf("%w: contact status %x", ErrCorrupt, v)
	}
	return v[0], nil
}

// SetContact sets owner's status for peer (0 removes it). The caller keeps
// Account.Contacts.
func (s *State) SetContact(owner, peer crypto.SessionID, status uint8) error {
	if status == 0 {
		return s.contacts().Delete(pairKey(owner, peer))
	}
	return s.contacts().Put(pairKey(owner, peer), []byte{status})
}

// ---- prekeys ----

// GetPrekeys returns id's prekey record (zero if it never published).
func (s *State) GetPrekeys(id crypto.SessionID) (PrekeyRecord, error) {
	k := SessionIDKey(id)
	b, err := s.prekeys().Get(k[:])
	if errors.Is(err, database.ErrNotFound) {
		return PrekeyRecord{}, nil
	}
	if err != nil {
		return PrekeyRecord{}, err
	}
	return decodePrekeyRecord(b)
}

// PutPrekeys stores id's prekey record.
func (s *State) PutPrekeys(id crypto.SessionID, p *PrekeyRecord) error {
	k := SessionIDKey(id)
	return s.prekeys().Put(k[:], p.encode())
}

func oneTimeKey(id crypto.SessionID, prekeyID uint32) []byte {
	k := SessionIDKey(id)
	return binary.BigEndian.AppendUint32(cat(k[:]), prekeyID)
}

// PutOneTime records an unclaimed one-time prekey and the transaction that
// published it.
func (s *State) PutOneTime(id crypto.SessionID, prekeyID uint32, txID ids.ID) error {
	return s.oneTimes().Put(oneTimeKey(id, prekeyID), txID[:])
}

// OneTime returns the publishing transaction of an unclaimed one-time
// prekey, or false if it is claimed or unknown.
func (s *State) OneTime(id crypto.SessionID, prekeyID uint32) (ids.ID, bool, error) {
	v, err := getID(s.db, s.oneTimes().key(oneTimeKey(id, prekeyID)))
	if errors.Is(err, database.ErrNotFound) {
		return ids.Empty, false, nil
	}
	return v, err == nil, err
}

// DeleteOneTime marks a one-time prekey claimed.
func (s *State) DeleteOneTime(id crypto.SessionID, prekeyID uint32) error {
	return s.oneTimes().Delete(oneTimeKey(id, prekeyID))
}

// FirstOneTime returns id's unclaimed one-time prekey with the lowest ID
// and its publishing transaction, or false if none is left.
func (s *State) FirstOneTime(id crypto.SessionID) (uint32, ids.ID, bool, error) {
	k := SessionIDKey(id)
	it := s.oneTimes().NewIteratorWithStartAndPrefix(k[:], k[:])
	defer it.Release()
	if !it.Next() {
		return 0, ids.Empty, false, it.Error()
	}
	key, v := it.Key(), it.Value()
	if len(key) != SessionIDSize+4 || len(v) != ids.IDLen {
		return 0, ids.Empty, false, fmt.Errorf("%w: one-time prekey entry", ErrCorrupt)
	}
	return binary.BigEndian.Uint32(key[SessionIDSize:]), ids.ID(v), true, nil
}

// CountDeleted records n posts removed by DeletePosts or eviction in the
// chain-wide counts (nothing on a TxWriteOnlyDropper view, whose counts
// nobody reads).
func (s *State) CountDeleted(n int) error {
	if n == 0 || s.dropsTxWriteOnly() {
		return nil
	}
	if err := s.AddCount(CountMessagesStored, -int64(n)); err != nil {
		return err
	}
	return s.AddCount(CountMessagesDeleted, int64(n))
}
