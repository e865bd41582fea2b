package service

import (
	"net/http"

	"github.com/luxfi/ids"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
)

// rpcService holds the methods; gorilla/rpc calls them by reflection.
type rpcService struct{ api vm.API }

// maxCB58IDLen is the longest string form of an ids.ID: 36 bytes (the ID
// and its 4-byte checksum) are at most 50 base58 digits; the names of
// native chains are shorter.
const maxCB58IDLen = 50

func parseID(field, s string) (ids.ID, error) {
	if s == "" {
		return ids.Empty, errorf(CodeInvalidParams, "invalid params: %s is required", field)
	}
	if len(s) > maxCB58IDLen {
		// Before decoding: base58 decoding takes time quadratic in the
		// length (a 100 KB string, 3 s of CPU).
		return ids.Empty, errorf(CodeInvalidParams, "invalid params: %s is not an ID in CB58 form: %d characters, at most %d", field, len(s), maxCB58IDLen)
	}
	id, err := ids.FromString(s)
	if err != nil {
		return ids.Empty, errorf(CodeInvalidParams, "invalid params: %s is not an ID in CB58 form: %v", field, err)
	}
	return id, nil
}

func parseSessionID(field, s string) (crypto.SessionID, error) {
	if s == "" {
		return crypto.SessionID{}, errorf(CodeInvalidParams, "invalid params: %s is required", field)
	}
	id, err := crypto.ParseSessionID(s)
	if err != nil {
		return crypto.SessionID{}, errorf(CodeInvalidParams, "invalid params: %s: %v", field, err)
	}
	return id, nil
}

func pageLimit(field string, n int) (int, error) {
	if n < 0 || n > MaxPageSize {
		return 0, errorf(CodeInvalidParams, "invalid params: %s must be in [0, %d] (0: %d), got %d", field, MaxPageSize, DefaultPageSize, n)
	}
	if n == 0 {
		return DefaultPageSize, nil
	}
	return n, nil
}

// submit admits a signed transaction of type want (0: any).
func (s *rpcService) submit(want tx.Type, raw []byte, reply *TxReply) error {
	t, err := s.issue(want, raw)
	if err != nil {
		return err
	}
	*reply = txReplyOf(t)
	return nil
}

// issue admits a signed transaction of type want (0: any) and returns it.
func (s *rpcService) issue(want tx.Type, raw []byte) (*tx.Tx, error) {
	if len(raw) == 0 {
		return nil, errorf(CodeInvalidParams, "invalid params: tx is required (the signed transaction bytes, base64)")
	}
	t, err := tx.ParseOwned(raw) // raw was decoded for this request
	if err != nil {
		return nil, err
	}
	if want != 0 && t.Type() != want {
		return nil, errorf(CodeInvalidParams, "invalid params: tx is a %s transaction; %s takes %s (issueTx takes any type)", t.Type(), want, want)
	}
	if err := s.api.Issue(t); err != nil {
		return nil, err
	}
	return t, nil
}

// txReplyOf is the reply to an admitted transaction (appendTxResult
// encodes the same without building it).
func txReplyOf(t *tx.Tx) TxReply {
	r := TxReply{TxID: t.ID(), Type: t.Type().String(), Author: t.Author.String(), Nonce: t.Nonce}
	switch t.Payload.(type) {
	case *tx.CreateSession:
		r.Session = tx.SessionIDFor(t.ChainID, t.Author, t.Nonce)
	case *tx.CreateChannel:
		r.Channel = tx.ChannelIDFor(t.ChainID, t.Author, t.Nonce)
	}
	return r
}

// IssueTx is session.issueTx: a signed transaction of any type.
func (s *rpcService) IssueTx(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(0, a.Tx, reply)
}

// RegisterIdentity is session.registerIdentity.
func (s *rpcService) RegisterIdentity(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeRegisterIdentity, a.Tx, reply)
}

// CreateSession is session.createSession.
func (s *rpcService) CreateSession(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeCreateSession, a.Tx, reply)
}

// CloseSession is session.closeSession.
func (s *rpcService) CloseSession(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeCloseSession, a.Tx, reply)
}

// SendMessage is session.sendMessage.
func (s *rpcService) SendMessage(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeSendMessage, a.Tx, reply)
}

// CreateChannel is session.createChannel.
func (s *rpcService) CreateChannel(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeCreateChannel, a.Tx, reply)
}

// JoinChannel is session.joinChannel.
func (s *rpcService) JoinChannel(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeJoinChannel, a.Tx, reply)
}

// LeaveChannel is session.leaveChannel.
func (s *rpcService) LeaveChannel(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeLeaveChannel, a.Tx, reply)
}

// PostChannel is session.postChannel.
func (s *rpcService) PostChannel(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypePostChannel, a.Tx, reply)
}

// GetTxStatus is session.getTxStatus.
func (s *rpcService) GetTxStatus(_ *http.Request, a *TxStatusArgs, reply *TxStatusReply) error {
	id, err := parseID("txID", a.TxID)
	if err != nil {
		return err
	}
	st, err := s.api.TxStatus(id)
	if err != nil {
		return err
	}
	*reply = TxStatusReply{TxID: id, Status: st.Status.String(), Reason: st.Reason, Dead: st.Dead}
	if st.Status == vm.TxAccepted {
		reply.Height, reply.Index = st.Height, st.Index
	}
	return nil
}

// GetNonce is session.getNonce.
func (s *rpcService) GetNonce(_ *http.Request, a *SessionIDArgs, reply *NonceReply) error {
	id, err := parseSessionID("sessionId", a.SessionID)
	if err != nil {
		return err
	}
	n, err := s.api.NextNonce(id)
	if err != nil {
		return err
	}
	*reply = NonceReply{SessionID: id.String(), Nonce: n}
	return nil
}
