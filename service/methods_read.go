package service

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/luxfi/ids"
	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
)

// GetIdentity is session.getIdentity.
func (s *rpcService) GetIdentity(_ *http.Request, a *SessionIDArgs, reply *IdentityReply) error {
	id, err := parseSessionID("sessionId", a.SessionID)
	if err != nil {
		return err
	}
	i, err := s.api.Identity(id)
	if errors.Is(err, state.ErrNotFound) {
		return errorf(CodeUnknownIdentity, "unknown identity %s: not registered", id)
	}
	if err != nil {
		return err
	}
	*reply = IdentityReply{
		SessionID:    i.ID.String(),
		KEMPublicKey: i.KEMPublicKey,
		DSAPublicKey: i.DSAPublicKey,
		Height:       i.Height,
		Timestamp:    i.Timestamp,
	}
	return nil
}

func sessionIDs(in []crypto.SessionID) []string {
	out := make([]string, len(in))
	for i, id := range in {
		out[i] = id.String()
	}
	return out
}

func (s *rpcService) getSession(id ids.ID) (*vm.SessionInfo, error) {
	si, err := s.api.Session(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, errorf(CodeUnknownSession, "unknown session %s", id)
	}
	return si, err
}

// GetSession is session.getSession.
func (s *rpcService) GetSession(_ *http.Request, a *SessionArgs, reply *SessionReply) error {
	id, err := parseID("session", a.Session)
	if err != nil {
		return err
	}
	si, err := s.getSession(id)
	if err != nil {
		return err
	}
	createTx, _, err := s.api.Tx(si.TxID)
	if err != nil {
		return fmt.Errorf("session %s: its creating transaction %s: %w", id, si.TxID, err)
	}
	*reply = SessionReply{
		Session:      si.ID,
		Creator:      si.Creator.String(),
		Participants: sessionIDs(si.Participants),
		Metadata:     si.Metadata,
		Height:       si.Height,
		CreatedAt:    si.CreatedAt,
		ExpiresAt:    si.ExpiresAt,
		Status:       si.Status.String(),
		LastSeq:      si.LastSeq,
		Stored:       si.Stored,
		Position:     si.Position,
		CreateTx:     createTx,
	}
	reply.ParticipantStates = make([]string, len(si.Participants))
	for i := range si.Participants {
		reply.ParticipantStates[i] = si.State(i).String()
	}
	if reply.Metadata == nil {
		reply.Metadata = []byte{}
	}
	if si.Closed {
		reply.ClosedBy, reply.ClosedAt = si.ClosedBy.String(), si.ClosedAt
	}
	return nil
}

func (s *rpcService) getChannel(id ids.ID) (*state.Channel, error) {
	c, err := s.api.Channel(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, errorf(CodeUnknownChannel, "unknown channel %s", id)
	}
	return c, err
}

// maxPageBytes bounds the ciphertext bytes of one page of messages (1 MiB,
// about 1.4 MB of base64), so a full page of the largest messages is cut
// short (with more set) rather than answered with 87 MB.
const maxPageBytes = vm.MaxPageBytes

// page fetches up to limit messages (one more when the API allows, to know
// whether more follow), cuts the page at maxPageBytes, and builds the reply.
func page(fetch func(n int) ([]*state.Message, error), limit int, after uint64, cursor func(*state.Message) uint64) (MessagesReply, error) {
	want := min(limit+1, MaxPageSize)
	in, err := fetch(want)
	if err != nil {
		return MessagesReply{}, err
	}
	more := len(in) > limit || (len(in) == limit && want == limit)
	if len(in) > limit {
		in = in[:limit]
	}
	total := 0
	for i, m := range in {
		if total += len(m.Ciphertext); total > maxPageBytes && i > 0 {
			in, more = in[:i], true
			break
		}
	}
	r := MessagesReply{Messages: make([]Message, len(in)), Next: after, More: more}
	for i, m := range in {
		r.Messages[i] = Message{
			Target:     m.Target,
			Seq:        m.Seq,
			Author:     m.Author.String(),
			TxID:       m.TxID,
			Height:     m.Height,
			Position:   m.Position,
			Timestamp:  m.Timestamp,
			Ciphertext: m.Ciphertext,
		}
		r.Next = cursor(m)
	}
	return r, nil
}

// GetMessages is session.getMessages.
func (s *rpcService) GetMessages(_ *http.Request, a *MessagesArgs, reply *MessagesReply) error {
	if (a.Session == "") == (a.Channel == "") {
		return errorf(CodeInvalidParams, "invalid params: give exactly one of session and channel")
	}
	limit, err := pageLimit("limit", a.Limit)
	if err != nil {
		return err
	}
	var target ids.ID
	if a.Session != "" {
		if target, err = parseID("session", a.Session); err != nil {
			return err
		}
		if _, err := s.getSession(target); err != nil {
			return err
		}
	} else {
		if target, err = parseID("channel", a.Channel); err != nil {
			return err
		}
		if _, err := s.getChannel(target); err != nil {
			return err
		}
	}
	*reply, err = page(func(n int) ([]*state.Message, error) { return s.api.Messages(target, a.After, n) },
		limit, a.After, func(m *state.Message) uint64 { return m.Seq })
	return err
}

// GetInbox is session.getInbox.
func (s *rpcService) GetInbox(_ *http.Request, a *InboxArgs, reply *MessagesReply) error {
	id, err := parseSessionID("sessionId", a.SessionID)
	if err != nil {
		return err
	}
	limit, err := pageLimit("limit", a.Limit)
	if err != nil {
		return err
	}
	if _, err := s.api.Identity(id); errors.Is(err, state.ErrNotFound) {
		return errorf(CodeUnknownIdentity, "unknown identity %s: not registered", id)
	} else if err != nil {
		return err
	}
	*reply, err = page(func(n int) ([]*state.Message, error) { return s.api.Inbox(id, a.After, n) },
		limit, a.After, func(m *state.Message) uint64 { return m.Position })
	return err
}

// GetChannel is session.getChannel.
func (s *rpcService) GetChannel(_ *http.Request, a *ChannelArgs, reply *ChannelReply) error {
	id, err := parseID("channel", a.Channel)
	if err != nil {
		return err
	}
	limit, err := pageLimit("membersLimit", a.MembersLimit)
	if err != nil {
		return err
	}
	var after *crypto.SessionID
	if a.MembersAfter != "" {
		sid, err := parseSessionID("membersAfter", a.MembersAfter)
		if err != nil {
			return err
		}
		after = &sid
	}
	c, err := s.getChannel(id)
	if err != nil {
		return err
	}
	members, err := s.api.ChannelMembers(id, after, limit)
	if err != nil {
		return err
	}
	*reply = ChannelReply{
		Channel:     c.ID,
		Owner:       c.Owner.String(),
		Name:        c.Name,
		Height:      c.Height,
		CreatedAt:   c.CreatedAt,
		JoinPolicy:  tx.JoinPolicy(c.JoinPolicy).String(),
		MemberCount: c.Members,
		InviteCount: c.Invites,
		BanCount:    c.Bans,
		Members:     make([]string, len(members)),
		MemberRoles: make([]string, len(members)),
	}
	for i, m := range members {
		reply.Members[i], reply.MemberRoles[i] = m.ID.String(), state.RoleName(m.Role)
	}
	return nil
}

// IsChannelMember is session.isChannelMember.
func (s *rpcService) IsChannelMember(_ *http.Request, a *MembershipArgs, reply *MembershipReply) error {
	id, err := parseID("channel", a.Channel)
	if err != nil {
		return err
	}
	member, err := parseSessionID("sessionId", a.SessionID)
	if err != nil {
		return err
	}
	if _, err := s.getChannel(id); err != nil {
		return err
	}
	st, err := s.api.ChannelStanding(id, member)
	if err != nil {
		return err
	}
	*reply = MembershipReply{Member: st.Role != 0, Role: state.RoleName(st.Role), Invited: st.Invited, Banned: st.Banned}
	return nil
}

// Status is session.status.
func (s *rpcService) Status(_ *http.Request, _ *EmptyArgs, reply *StatusReply) error {
	st, err := s.api.Status()
	if err != nil {
		return err
	}
	*reply = StatusReply{
		ChainID:          st.ChainID,
		LastAcceptedID:   st.LastAcceptedID,
		Height:           st.Height,
		LastAcceptedTime: st.LastAcceptedTime,
		MempoolTxs:       st.MempoolTxs,
		MempoolBytes:     st.MempoolBytes,
		ProcessingBlocks: st.ProcessingBlocks,
		AcceptedTxs:      st.AcceptedTxs,
		Identities:       st.Counts.Identities,
		Sessions:         st.Counts.Sessions,
		Channels:         st.Counts.Channels,
		MessagesStored:   st.Counts.MessagesStored,
		MessagesTotal:    st.Counts.MessagesTotal,
		MessagesPruned:   st.Counts.MessagesPruned,
		MessagesDeleted:  st.Counts.MessagesDeleted,

		AcceptedTxsSinceStart: st.AcceptedTxsSinceStart,
	}
	return nil
}

// Health is session.health. An unhealthy node answers with healthy false
// and the reason; a VM that is not running answers with CodeUnavailable.
func (s *rpcService) Health(r *http.Request, _ *EmptyArgs, reply *HealthReply) error {
	hc, ok := s.api.(HealthChecker)
	if !ok {
		st, err := s.api.Status()
		if err != nil {
			return err
		}
		*reply = HealthReply{
			Healthy:          true,
			LastAcceptedID:   st.LastAcceptedID.String(),
			LastAcceptedTime: st.LastAcceptedTime,
			Height:           st.Height,
			ProcessingBlocks: st.ProcessingBlocks,
			MempoolTxs:       st.MempoolTxs,
			MempoolBytes:     st.MempoolBytes,
		}
		return nil
	}
	hr, err := hc.Health(r.Context())
	if errors.Is(err, vm.ErrNotInitialized) || errors.Is(err, vm.ErrShutdown) {
		return err
	}
	*reply = HealthReply{
		Healthy:            hr.Healthy,
		LastAcceptedID:     hr.LastAcceptedID,
		LastAcceptedTime:   hr.LastAcceptedTime,
		Height:             hr.Height,
		ProcessingBlocks:   hr.ProcessingBlocks,
		MempoolTxs:         hr.MempoolTxs,
		MempoolBytes:       hr.MempoolBytes,
		Database:           hr.Database,
		SignaturesVerified: hr.SignaturesVerified,
		Gossip:             &hr.Gossip,
		DiskNote:           hr.DiskNote,
	}
	if d := hr.Disk; d != nil {
		reply.Disk = &DiskReply{
			FreeBytes: d.FreeBytes, ReserveBytes: d.ReserveBytes, AdmitBytes: d.AdmitBytes,
			Admitting: d.Admitting, Committing: d.Committing, Error: d.Error,
		}
	}
	reply.Healthy = err == nil && reply.Healthy
	if err != nil {
		reply.Error = err.Error()
	}
	return nil
}

// GetConfig is session.getConfig.
func (s *rpcService) GetConfig(_ *http.Request, _ *EmptyArgs, reply *ConfigReply) error {
	c := s.api.Config()
	*reply = ConfigReply{
		ChainID:           s.api.ChainID(),
		SessionTTL:        c.SessionTTL,
		MaxMessages:       c.MaxMessages,
		MaxChannels:       c.MaxChannels,
		RetentionDays:     c.RetentionDays,
		IDPrefix:          c.IDPrefix,
		MaxCiphertextSize: config.MaxCiphertextSize,
		MaxMetadataSize:   config.MaxMetadataSize,
		MaxParticipants:   config.MaxParticipants,
		MaxChannelName:    config.MaxChannelNameSize,
		MaxChannelMembers: config.MaxChannelMembers,
		MaxTxSize:         config.MaxTxSize,
		MaxPageSize:       MaxPageSize,
		MaxBodySize:       MaxBodySize,

		Registration:            c.Registration,
		RateLimits:              c.RateLimits,
		Prekeys:                 c.Prekeys,
		MaxPrekeysPerTx:         config.MaxPrekeysPerTx,
		MaxUnclaimedPrekeys:     config.MaxUnclaimedPrekeys,
		MaxSignedPrekeyLifetime: config.MaxSignedPrekeyLifetime,
		RequestBackfill:         config.RequestBackfill,
		MaxContacts:             config.MaxContacts,
		MaxBlocked:              config.MaxBlocked,
		MaxMemberships:          config.MaxMemberships,
		MaxModerationRecords:    config.MaxModerationRecords,
		MaxClaimsPerPair:        config.MaxClaimsPerPair,
		MaxSlowModeSeconds:      config.MaxSlowModeSeconds,
	}
	return nil
}
