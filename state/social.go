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

func reqTimeKey(recipient crypto.SessionID, pos uint64) []byte {
	k := SessionIDKey(recipient)
	return binary.BigEndian.AppendUint64(cat(k[:]), pos)
}

// PutRequest records (or replaces) creator's request to recipient, in both
// indexes: by creator (one entry per creator) and by position (the list
// clients page). Writes: the old entry's time index entry is deleted (if
// it is replaced), then the creator entry and the time entry are put.
func (s *State) PutRequest(recipient crypto.SessionID, r Request) error {
	old, ok, err := s.GetRequest(recipient, r.Creator)
	if err != nil {
		return err
	}
	if ok {
		if err := s.reqTimes().Delete(reqTimeKey(recipient, old.Position)); err != nil {
			return err
		}
	}
	v := binary.BigEndian.AppendUint64(append(make([]byte, 0, ids.IDLen+8), r.Session[:]...), r.Position)
	if err := s.requests().Put(pairKey(recipient, r.Creator), v); err != nil {
		return err
	}
	ck := SessionIDKey(r.Creator)
	return s.reqTimes().Put(reqTimeKey(recipient, r.Position), cat(ck[:], r.Session[:]))
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

// DeleteRequest removes creator's request to recipient, if any, from both
// indexes (the creator entry, then the time entry).
func (s *State) DeleteRequest(recipient, creator crypto.SessionID) error {
	r, ok, err := s.GetRequest(recipient, creator)
	if err != nil || !ok {
		return err
	}
	return s.deleteRequest(recipient, r)
}

func (s *State) deleteRequest(recipient crypto.SessionID, r Request) error {
	if err := s.requests().Delete(pairKey(recipient, r.Creator)); err != nil {
		return err
	}
	return s.reqTimes().Delete(reqTimeKey(recipient, r.Position))
}

// DeleteRequestFor removes creator's request to recipient if it is for
// session (a newer request from the same creator stays).
func (s *State) DeleteRequestFor(recipient, creator crypto.SessionID, session ids.ID) error {
	r, ok, err := s.GetRequest(recipient, creator)
	if err != nil || !ok || r.Session != session {
		return err
	}
	return s.deleteRequest(recipient, r)
}

// Requests returns up to limit pending requests to recipient whose
// session was created after position after, in chain (time) order.
func (s *State) Requests(recipient crypto.SessionID, after uint64, limit int) ([]Request, error) {
	if limit <= 0 || after == ^uint64(0) {
		return nil, nil
	}
	rk := SessionIDKey(recipient)
	it := s.reqTimes().NewIteratorWithStartAndPrefix(reqTimeKey(recipient, after+1), rk[:])
	defer it.Release()
	var out []Request
	for len(out) < limit && it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != SessionIDSize+8 || len(v) != SessionIDSize+ids.IDLen {
			return nil, fmt.Errorf("%w: request time entry", ErrCorrupt)
		}
		creator, err := SessionIDFromKey(v[:SessionIDSize])
		if err != nil {
			return nil, err
		}
		out = append(out, Request{Creator: creator, Session: ids.ID(v[SessionIDSize:]), Position: binary.BigEndian.Uint64(k[SessionIDSize:])})
	}
	return out, it.Error()
}

// pruneRequests removes the request entries of a session that still point
// at it (retention of a request, and of a session): for each listed
// participant, in order.
func (s *State) pruneRequests(session ids.ID) error {
	sess, err := s.GetSession(session)
	if errors.Is(err, database.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.pruneRequestsOf(sess)
}

func (s *State) pruneRequestsOf(sess *Session) error {
	for _, p := range sess.Participants[1:] {
		if err := s.DeleteRequestFor(p, sess.Creator, sess.ID); err != nil {
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

// OneTimePrekey is an unclaimed one-time prekey: its ID and the
// transaction that published it.
type OneTimePrekey struct {
	ID uint32
	Tx ids.ID
}

// OneTimes returns id's unclaimed one-time prekeys with IDs at or below
// through, lowest first (at most config.MaxUnclaimedPrekeys exist).
func (s *State) OneTimes(id crypto.SessionID, through uint32) ([]OneTimePrekey, error) {
	k := SessionIDKey(id)
	it := s.oneTimes().NewIteratorWithStartAndPrefix(k[:], k[:])
	defer it.Release()
	var out []OneTimePrekey
	for it.Next() {
		key, v := it.Key(), it.Value()
		if len(key) != SessionIDSize+4 || len(v) != ids.IDLen {
			return nil, fmt.Errorf("%w: one-time prekey entry", ErrCorrupt)
		}
		pid := binary.BigEndian.Uint32(key[SessionIDSize:])
		if pid > through {
			break
		}
		out = append(out, OneTimePrekey{ID: pid, Tx: ids.ID(v)})
	}
	return out, it.Error()
}

// ---- the claim log ----

// ClaimRecord is an entry of a target's claim log: a claim of its
// prekeys at a position.
type ClaimRecord struct {
	Position        uint64
	Claimer         crypto.SessionID
	Session         ids.ID
	Tx              ids.ID // the claiming transaction
	SignedPrekeyID  uint32
	OneTimePrekeyID uint32 // 0: none
	OneTimeTx       ids.ID // the publishing transaction of the one-time prekey (empty if none)
	Time            int64  // block time
}

const claimRecordSize = SessionIDSize + 3*ids.IDLen + 4 + 4 + 8

func claimLogKey(target crypto.SessionID, pos uint64) []byte {
	k := SessionIDKey(target)
	return binary.BigEndian.AppendUint64(cat(k[:]), pos)
}

// PutClaim adds an entry to target's claim log.
func (s *State) PutClaim(target crypto.SessionID, c *ClaimRecord) error {
	ck := SessionIDKey(c.Claimer)
	v := make([]byte, 0, claimRecordSize)
	v = append(v, ck[:]...)
	v = append(v, c.Session[:]...)
	v = append(v, c.Tx[:]...)
	v = binary.BigEndian.AppendUint32(v, c.SignedPrekeyID)
	v = binary.BigEndian.AppendUint32(v, c.OneTimePrekeyID)
	v = append(v, c.OneTimeTx[:]...)
	v = binary.BigEndian.AppendUint64(v, uint64(c.Time))
	return s.claimLog().Put(claimLogKey(target, c.Position), v)
}

// Claims returns up to limit entries of target's claim log after position
// after, in chain order.
func (s *State) Claims(target crypto.SessionID, after uint64, limit int) ([]ClaimRecord, error) {
	if limit <= 0 || after == ^uint64(0) {
		return nil, nil
	}
	tk := SessionIDKey(target)
	it := s.claimLog().NewIteratorWithStartAndPrefix(claimLogKey(target, after+1), tk[:])
	defer it.Release()
	var out []ClaimRecord
	for len(out) < limit && it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != SessionIDSize+8 || len(v) != claimRecordSize {
			return nil, fmt.Errorf("%w: claim log entry", ErrCorrupt)
		}
		claimer, err := SessionIDFromKey(v[:SessionIDSize])
		if err != nil {
			return nil, err
		}
		v = v[SessionIDSize:]
		out = append(out, ClaimRecord{
			Position:        binary.BigEndian.Uint64(k[SessionIDSize:]),
			Claimer:         claimer,
			Session:         ids.ID(v[:32]),
			Tx:              ids.ID(v[32:64]),
			SignedPrekeyID:  binary.BigEndian.Uint32(v[64:]),
			OneTimePrekeyID: binary.BigEndian.Uint32(v[68:]),
			OneTimeTx:       ids.ID(v[72:104]),
			Time:            int64(binary.BigEndian.Uint64(v[104:])),
		})
	}
	return out, it.Error()
}

// QueueClaim queues a claim log entry for retention: item 'w' | the
// target's digest | position (every Session ID on the chain has the
// prefix 0x07).
func (s *State) QueueClaim(target crypto.SessionID, pos uint64, ts int64) error {
	if s.dropsTxWriteOnly() {
		return nil
	}
	return s.queueItem(KindClaim, ids.ID(target.Digest), pos, pos, ts)
}

// ---- anchors: the IDs of recent blocks ----

// PutAnchor records the ID of the block at height.
func (s *State) PutAnchor(height uint64, id ids.ID) error {
	return s.anchors().Put(u64(height), id[:])
}

// Anchor returns the recorded ID of the block at height, or false.
func (s *State) Anchor(height uint64) (ids.ID, bool, error) {
	v, err := getID(s.db, s.anchors().key(u64(height)))
	if errors.Is(err, database.ErrNotFound) {
		return ids.Empty, false, nil
	}
	return v, err == nil, err
}

// DeleteAnchor removes the record of height.
func (s *State) DeleteAnchor(height uint64) error {
	return s.anchors().Delete(u64(height))
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
