package service

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/tx"
)

// The methods of consent, prekeys, moderation and the proofs a client
// verifies (docs/chain.md).

// PublishPrekeys is session.publishPrekeys.
func (s *rpcService) PublishPrekeys(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypePublishPrekeys, a.Tx, reply)
}

// AcceptSession is session.acceptSession.
func (s *rpcService) AcceptSession(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeAcceptSession, a.Tx, reply)
}

// SetContact is session.setContact.
func (s *rpcService) SetContact(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeSetContact, a.Tx, reply)
}

// SetChannelPolicy is session.setChannelPolicy.
func (s *rpcService) SetChannelPolicy(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeSetChannelPolicy, a.Tx, reply)
}

// ModerateChannel is session.moderateChannel.
func (s *rpcService) ModerateChannel(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeModerateChannel, a.Tx, reply)
}

// DeletePosts is session.deletePosts.
func (s *rpcService) DeletePosts(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeDeletePosts, a.Tx, reply)
}

// registered refuses an unregistered identity with CodeUnknownIdentity.
func (s *rpcService) registered(id crypto.SessionID) (*state.Identity, error) {
	i, err := s.api.Identity(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, errorf(CodeUnknownIdentity, "unknown identity %s: not registered", id)
	}
	return i, err
}

// SetRequestPolicy is session.setRequestPolicy.
func (s *rpcService) SetRequestPolicy(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeSetRequestPolicy, a.Tx, reply)
}

// GetPrekeyBundle is session.getPrekeyBundle.
func (s *rpcService) GetPrekeyBundle(_ *http.Request, a *PrekeyBundleArgs, reply *PrekeyBundleReply) error {
	id, err := parseSessionID("sessionId", a.SessionID)
	if err != nil {
		return err
	}
	var claimer *crypto.SessionID
	if a.Claimer != "" {
		c, err := parseSessionID("claimer", a.Claimer)
		if err != nil {
			return err
		}
		claimer = &c
	}
	var session *ids.ID
	if a.Session != "" {
		if claimer == nil {
			return errorf(CodeInvalidParams, "invalid params: session needs claimer")
		}
		sid, err := parseID("session", a.Session)
		if err != nil {
			return err
		}
		session = &sid
	}
	ident, err := s.registered(id)
	if err != nil {
		return err
	}
	p, err := s.api.Prekeys(id, claimer, session)
	if err != nil {
		return err
	}
	*reply = PrekeyBundleReply{
		SessionID:    id.String(),
		KEMPublicKey: ident.KEMPublicKey,
		DSAPublicKey: ident.DSAPublicKey,
		Unclaimed:    p.Unclaimed,
		// The highest one-time ID published, for a device that replaced
		// a lost one (service.Messenger resumes above it).
		LastOneTimeID: p.LastOneTimeID,
	}
	if p.HasSigned {
		raw, _, err := s.api.Tx(p.SignedTx)
		if err != nil {
			return fmt.Errorf("signed prekey of %s: transaction %s: %w", id, p.SignedTx, err)
		}
		reply.SignedPrekey = &SignedPrekeyProof{ID: p.SignedID, ExpiresAt: p.SignedExpiresAt, Tx: raw}
	}
	if p.HasOneTime {
		raw, _, err := s.api.Tx(p.OneTimeTx)
		if err != nil {
			return fmt.Errorf("one-time prekey %d of %s: transaction %s: %w", p.OneTimeID, id, p.OneTimeTx, err)
		}
		reply.OneTimePrekey = &OneTimePrekeyProof{ID: p.OneTimeID, Tx: raw}
	}
	return nil
}

// GetTx is session.getTx.
func (s *rpcService) GetTx(_ *http.Request, a *GetTxArgs, reply *GetTxReply) error {
	id, err := parseID("txID", a.TxID)
	if err != nil {
		return err
	}
	raw, loc, err := s.api.Tx(id)
	if errors.Is(err, state.ErrNotFound) {
		return errorf(CodeUnknownTx, "unknown transaction %s: not accepted (getTxStatus tells pending or dropped ones)", id)
	}
	if err != nil {
		return err
	}
	t, err := tx.Parse(raw)
	if err != nil {
		return fmt.Errorf("stored transaction %s: %w", id, err)
	}
	*reply = GetTxReply{TxID: id, Type: t.Type().String(), Tx: raw, Height: loc.Height, Index: loc.Index}
	return nil
}

// identityPage checks the arguments of a paged read of one identity's
// records: its Session ID (registered) and the page limit.
func (s *rpcService) identityPage(sessionID string, limit int) (crypto.SessionID, int, error) {
	id, err := parseSessionID("sessionId", sessionID)
	if err != nil {
		return id, 0, err
	}
	if limit, err = pageLimit("limit", limit); err != nil {
		return id, 0, err
	}
	_, err = s.registered(id)
	return id, limit, err
}

// ListSessions is session.listSessions.
func (s *rpcService) ListSessions(_ *http.Request, a *SessionsArgs, reply *SessionsReply) error {
	id, limit, err := s.identityPage(a.SessionID, a.Limit)
	if err != nil {
		return err
	}
	list, err := s.api.Sessions(id, a.After, limit+1)
	if err != nil {
		return err
	}
	*reply = SessionsReply{Sessions: []SessionEntry{}, Next: a.After, More: len(list) > limit}
	for _, p := range list[:min(len(list), limit)] {
		reply.Sessions = append(reply.Sessions, SessionEntry{Session: p.Session, Position: p.Position})
		reply.Next = p.Position
	}
	return nil
}

// GetClaims is session.getClaims.
func (s *rpcService) GetClaims(_ *http.Request, a *ClaimsArgs, reply *ClaimsReply) error {
	id, limit, err := s.identityPage(a.SessionID, a.Limit)
	if err != nil {
		return err
	}
	list, err := s.api.Claims(id, a.After, limit+1)
	if err != nil {
		return err
	}
	*reply = ClaimsReply{Claims: []ClaimEntry{}, Next: a.After, More: len(list) > limit}
	for _, c := range list[:min(len(list), limit)] {
		reply.Claims = append(reply.Claims, ClaimEntry{
			Position: c.Position, Claimer: c.Claimer.String(), Session: c.Session, TxID: c.Tx,
			SignedPrekeyID: c.SignedPrekeyID, OneTimePrekeyID: c.OneTimePrekeyID, OneTimeTx: c.OneTimeTx, Timestamp: c.Time,
		})
		reply.Next = c.Position
	}
	return nil
}

// GetRequests is session.getRequests.
func (s *rpcService) GetRequests(_ *http.Request, a *RequestsArgs, reply *RequestsReply) error {
	id, limit, err := s.identityPage(a.SessionID, a.Limit)
	if err != nil {
		return err
	}
	list, err := s.api.Requests(id, a.After, limit+1)
	if err != nil {
		return err
	}
	*reply = RequestsReply{Requests: []RequestEntry{}, Next: a.After, More: len(list) > limit}
	for _, r := range list[:min(len(list), limit)] {
		status := "unknown"
		if si, err := s.api.Session(r.Session); err == nil {
			status = si.Status.String()
		} else if !errors.Is(err, state.ErrNotFound) {
			return err
		}
		reply.Requests = append(reply.Requests, RequestEntry{Creator: r.Creator.String(), Session: r.Session, Position: r.Position, Status: status})
		reply.Next = r.Position
	}
	return nil
}

// GetContact is session.getContact.
func (s *rpcService) GetContact(_ *http.Request, a *ContactArgs, reply *ContactReply) error {
	id, err := parseSessionID("sessionId", a.SessionID)
	if err != nil {
		return err
	}
	peer, err := parseSessionID("peer", a.Peer)
	if err != nil {
		return err
	}
	st, err := s.api.Contact(id, peer)
	if err != nil {
		return err
	}
	*reply = ContactReply{SessionID: id.String(), Peer: peer.String(), Status: tx.ContactStatus(st).String()}
	return nil
}
