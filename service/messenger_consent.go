package service

import (
	"context"
	"fmt"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

// SessionInfo is a session as a Messenger lists it: who takes part
// (verified from the creator's signed transaction) and what the node says
// of its state.
type SessionInfo struct {
	Session      ids.ID
	Creator      string
	Participants []string // the creator first
	// States are, per participant, "accepted", "pending" or "left" (the
	// node's word).
	States    []string
	Status    string // active, closed or expired (the node's word)
	CreatedAt int64
	ExpiresAt int64
	Metadata  []byte
	// LastSeq is the session's latest sequence number (the node's word);
	// ReadThrough the one this Messenger has read the session through, so
	// LastSeq - ReadThrough messages are new.
	LastSeq     uint64
	ReadThrough uint64
	Position    uint64 // chain position of its creation (the listing's cursor)
}

func (m *Messenger) info(cv *conv) *SessionInfo {
	r := cv.v.Reply
	return &SessionInfo{
		Session: cv.id, Creator: cv.v.Creator, Participants: cv.v.Participants, States: r.ParticipantStates,
		Status: r.Status, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, Metadata: cv.v.Metadata,
		LastSeq: r.LastSeq, ReadThrough: m.st.read(cv.id), Position: r.Position,
	}
}

// Session returns a session, verified, with the node's view of its state
// (fetched now).
func (m *Messenger) Session(ctx context.Context, session ids.ID) (*SessionInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.convs, session) // the state is fetched anew
	cv, err := m.conversation(ctx, session)
	if err != nil {
		return nil, err
	}
	return m.info(cv), nil
}

// SessionList is a page of Sessions.
type SessionList struct {
	Sessions []SessionInfo
	Next     uint64
	More     bool
}

// Sessions lists the sessions this identity created or accepted
// (listSessions, in the order of their creation, after the chain position
// after), each verified as Session does. Message requests not yet accepted
// are listed by Requests.
func (m *Messenger) Sessions(ctx context.Context, after uint64, limit int) (*SessionList, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	page, err := m.c.Sessions(ctx, m.id.SessionID, after, limit)
	if err != nil {
		return nil, err
	}
	out := &SessionList{Next: page.Next, More: page.More}
	for _, e := range page.Sessions {
		delete(m.convs, e.Session)
		cv, err := m.conversation(ctx, e.Session)
		if err != nil {
			return nil, fmt.Errorf("session %s: %w", e.Session, err)
		}
		out.Sessions = append(out.Sessions, *m.info(cv))
	}
	return out, nil
}

// Requests lists the message requests to this identity (getRequests):
// sessions strangers created with it, one per creator, in the order of
// their creation, after the position after (0 from the first). Read shows
// a request's messages before it is accepted; Accept, Decline, or Block
// answer it.
func (m *Messenger) Requests(ctx context.Context, after uint64, limit int) (*RequestsReply, error) {
	return m.c.Requests(ctx, m.id.SessionID, after, limit)
}

// Accept accepts a session (a message request): its messages reach the
// inbox from now on, the first few at once. The session is verified first.
func (m *Messenger) Accept(ctx context.Context, session ids.ID) (*Sent, error) {
	return m.answer(ctx, session, tx.DecisionAccept)
}

// Decline declines a message request, or leaves an accepted session: no
// more of its messages reach the inbox, and this identity may not send to
// it (accepting later brings it back).
func (m *Messenger) Decline(ctx context.Context, session ids.ID) (*Sent, error) {
	return m.answer(ctx, session, tx.DecisionDecline)
}

func (m *Messenger) answer(ctx context.Context, session ids.ID, d tx.Decision) (*Sent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.participant(ctx, session); err != nil {
		return nil, err
	}
	delete(m.convs, session) // its states change
	return m.submitPayload(ctx, &tx.AcceptSession{Session: session, Decision: d})
}

// SetContact sets this identity's status for peer (a Session ID):
// tx.ContactTrusted (its sessions skip the request step, and it may claim
// this identity's reserved one-time prekeys), tx.ContactBlocked (it can no
// longer include this identity in sessions; its pending request goes), or
// tx.ContactNone. Contact lists are public on chain.
func (m *Messenger) SetContact(ctx context.Context, peer string, status tx.ContactStatus) (*Sent, error) {
	sid, err := crypto.ParseSessionID(peer)
	if err != nil {
		return nil, fmt.Errorf("service: peer: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.submitPayload(ctx, &tx.SetContact{Peer: sid, Status: status})
}

// Contact returns this identity's status for peer: "none", "contact" or
// "blocked" (the node's word).
func (m *Messenger) Contact(ctx context.Context, peer string) (string, error) {
	return m.c.Contact(ctx, m.id.SessionID, peer)
}

// submitPayload signs and submits a payload and waits for its block unless
// WithoutWaiting.
func (m *Messenger) submitPayload(ctx context.Context, p tx.Payload) (*Sent, error) {
	r, t, err := m.c.signSubmit(ctx, m.id, p, nil)
	if err != nil {
		return nil, err
	}
	s := &Sent{TxID: r.TxID, Nonce: t.Nonce, Status: TxPending}
	return s, m.wait(ctx, s)
}
