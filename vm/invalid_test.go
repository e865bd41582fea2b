package vm

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/block"
	"github.com/luxfi/session/vm/mempool"
	"github.com/luxfi/session/vm/tx"
)

// TestInvalidTransactions checks that every invalid transaction is refused
// with its named error, both at mempool admission and inside a block that a
// peer proposes (where the signature cache is cold).
func TestInvalidTransactions(t *testing.T) {
	alice, bob, carol, stranger := identity(t, 0), identity(t, 1), identity(t, 2), identity(t, 6)
	cases := []struct {
		name string
		cfg  map[string]any
		// make prepares state (accepting blocks) and returns the bad tx.
		make func(e *env) *tx.Tx
		want error
	}{
		{"bad signature", nil, func(e *env) *tx.Tx {
			good := e.sign(alice, &tx.CreateChannel{Name: "c"})
			raw := bytes.Clone(good.Bytes())
			raw[len(raw)-100] ^= 1
			bad, err := tx.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			return bad
		}, tx.ErrBadSignature},
		{"signed by another key", nil, func(e *env) *tx.Tx {
			u := tx.Unsigned{ChainID: e.vm.ChainID(), Author: sid(t, alice), Nonce: 0, Payload: &tx.CreateChannel{Name: "c"}}
			forged, err := u.Sign(bob)
			if err != nil {
				t.Fatal(err)
			}
			return forged
		}, tx.ErrBadSignature},
		{"wrong chain ID", nil, func(e *env) *tx.Tx {
			t2, err := tx.Sign(alice, ids.ID{9}, 0, &tx.CreateChannel{Name: "c"})
			if err != nil {
				t.Fatal(err)
			}
			return t2
		}, tx.ErrWrongChainID},
		{"replayed nonce", nil, func(e *env) *tx.Tx {
			e.do(alice, &tx.CreateChannel{Name: "c"})
			return e.signNonce(alice, 0, &tx.CreateChannel{Name: "d"})
		}, tx.ErrReplayedNonce},
		{"skipped nonce", nil, func(e *env) *tx.Tx {
			return e.signNonce(alice, 5, &tx.CreateChannel{Name: "d"})
		}, tx.ErrSkippedNonce},
		{"unregistered author", nil, func(e *env) *tx.Tx {
			return e.signNonce(stranger, 0, &tx.CreateChannel{Name: "d"})
		}, tx.ErrUnregisteredAuthor},
		{"non-participant", nil, func(e *env) *tx.Tx {
			s := e.createSession(alice, bob)
			return e.sign(carol, &tx.SendMessage{Session: s, Ciphertext: []byte("x")})
		}, tx.ErrNotParticipant},
		{"closed session", nil, func(e *env) *tx.Tx {
			s := e.createSession(alice, bob)
			e.acceptAll(s, bob)
			e.do(bob, &tx.CloseSession{Session: s})
			return e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("x")})
		}, tx.ErrSessionClosed},
		{"expired session", map[string]any{"sessionTTL": 60}, func(e *env) *tx.Tx {
			s := e.createSession(alice, bob)
			e.clock.Advance(61 * time.Second)
			return e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("x")})
		}, tx.ErrSessionExpired},
		{"maxMessages reached", map[string]any{"maxMessages": 2}, func(e *env) *tx.Tx {
			s := e.createSession(alice, bob)
			e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("1")})
			e.do(bob, &tx.SendMessage{Session: s, Ciphertext: []byte("2")})
			return e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("3")})
		}, tx.ErrMaxMessages},
		{"unknown session", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.SendMessage{Session: ids.ID{7}, Ciphertext: []byte("x")})
		}, tx.ErrUnknownSession},
		{"close unknown session", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.CloseSession{Session: ids.ID{7}})
		}, tx.ErrUnknownSession},
		{"oversize ciphertext", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.SendMessage{Session: ids.ID{7}, Ciphertext: make([]byte, config.MaxCiphertextSize+1)})
		}, tx.ErrOversize},
		{"oversize metadata", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Metadata: make([]byte, config.MaxMetadataSize+1)})
		}, tx.ErrOversize},
		{"empty ciphertext", nil, func(e *env) *tx.Tx {
			s := e.createSession(alice, bob)
			return e.sign(alice, &tx.SendMessage{Session: s})
		}, tx.ErrEmptyCiphertext},
		{"duplicate registration", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.RegisterIdentity{KEMPublicKey: alice.KEMPublicKey, DSAPublicKey: alice.DSAPublicKey})
		}, tx.ErrDuplicateRegistration},
		{"Session ID not derived from keys", nil, func(e *env) *tx.Tx {
			u := tx.Unsigned{ChainID: e.vm.ChainID(), Author: sid(t, stranger), Payload: &tx.RegisterIdentity{KEMPublicKey: bob.KEMPublicKey, DSAPublicKey: bob.DSAPublicKey}}
			t2, err := u.Sign(bob)
			if err != nil {
				t.Fatal(err)
			}
			return t2
		}, tx.ErrSessionIDMismatch},
		{"unregistered participant", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, stranger)}})
		}, tx.ErrUnknownParticipant},
		{"duplicate participant", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob), sid(t, bob)}})
		}, tx.ErrDuplicateParticipant},
		{"creator as participant", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, alice)}})
		}, tx.ErrDuplicateParticipant},
		{"no participants", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.CreateSession{})
		}, tx.ErrNoParticipants},
		{"post to unknown channel", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.PostChannel{Channel: ids.ID{3}, Ciphertext: []byte("x")})
		}, tx.ErrUnknownChannel},
		{"post by non-member", nil, func(e *env) *tx.Tx {
			c := e.do(carol, &tx.CreateChannel{Name: "c"})
			return e.sign(alice, &tx.PostChannel{Channel: tx.ChannelIDFor(e.vm.ChainID(), c.Author, c.Nonce), Ciphertext: []byte("x")})
		}, tx.ErrNotMember},
		{"join twice", nil, func(e *env) *tx.Tx {
			c := e.do(carol, &tx.CreateChannel{Name: "c"})
			return e.sign(carol, &tx.JoinChannel{Channel: tx.ChannelIDFor(e.vm.ChainID(), c.Author, c.Nonce)})
		}, tx.ErrAlreadyMember},
		{"owner leaves", nil, func(e *env) *tx.Tx {
			c := e.do(carol, &tx.CreateChannel{Name: "c"})
			return e.sign(carol, &tx.LeaveChannel{Channel: tx.ChannelIDFor(e.vm.ChainID(), c.Author, c.Nonce)})
		}, tx.ErrOwnerCannotLeave},
		{"leave without joining", nil, func(e *env) *tx.Tx {
			c := e.do(carol, &tx.CreateChannel{Name: "c"})
			return e.sign(alice, &tx.LeaveChannel{Channel: tx.ChannelIDFor(e.vm.ChainID(), c.Author, c.Nonce)})
		}, tx.ErrNotMember},
		{"maxChannels reached (per identity)", map[string]any{"maxChannels": 1}, func(e *env) *tx.Tx {
			e.do(carol, &tx.CreateChannel{Name: "c"})
			e.do(alice, &tx.CreateChannel{Name: "a"}) // another identity is not affected
			return e.sign(carol, &tx.CreateChannel{Name: "d"})
		}, tx.ErrMaxChannels},
		{"invalid channel name", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.CreateChannel{Name: "bad\x00name"})
		}, tx.ErrInvalidChannelName},

		// Registration work.
		{"work below the pre-filter", map[string]any{"registration": map[string]any{"memoryKiB": 8, "prefilterBits": 8, "workBits": 0}}, func(e *env) *tx.Tx {
			return e.sign(stranger, &tx.RegisterIdentity{KEMPublicKey: stranger.KEMPublicKey, DSAPublicKey: stranger.DSAPublicKey,
				Work: failingWork(t, e, stranger, true)})
		}, tx.ErrInsufficientWork},
		{"work below the Argon2id difficulty", map[string]any{"registration": map[string]any{"memoryKiB": 8, "prefilterBits": 0, "workBits": 8}}, func(e *env) *tx.Tx {
			return e.sign(stranger, &tx.RegisterIdentity{KEMPublicKey: stranger.KEMPublicKey, DSAPublicKey: stranger.DSAPublicKey,
				Work: failingWork(t, e, stranger, false)})
		}, tx.ErrInsufficientWork},

		// Rate limits.
		{"messages bucket empty", map[string]any{"rateLimits": map[string]any{"messages": map[string]any{"burst": 1, "refillSeconds": 3600}}}, func(e *env) *tx.Tx {
			s := e.createSession(alice, bob)
			e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("1")})
			return e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("2")})
		}, tx.ErrRateLimited},
		{"requests bucket too small for the group", map[string]any{"rateLimits": map[string]any{"requests": map[string]any{"burst": 2, "refillSeconds": 3600}}}, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob), sid(t, carol), sid(t, identity(t, 3))}})
		}, tx.ErrRateLimited},

		// Consent.
		{"participant blocked the creator", nil, func(e *env) *tx.Tx {
			e.do(bob, &tx.SetContact{Peer: sid(t, alice), Status: tx.ContactBlocked})
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, carol), sid(t, bob)}})
		}, tx.ErrBlocked},
		{"accept twice", nil, func(e *env) *tx.Tx {
			s := e.createSession(alice, bob)
			e.acceptAll(s, bob)
			return e.sign(bob, &tx.AcceptSession{Session: s})
		}, tx.ErrSessionAlreadyAccepted},
		{"creator accepts", nil, func(e *env) *tx.Tx {
			s := e.createRequest(alice, bob)
			return e.sign(alice, &tx.AcceptSession{Session: s})
		}, tx.ErrSessionAlreadyAccepted},
		{"close a request before accepting", nil, func(e *env) *tx.Tx {
			s := e.createRequest(alice, bob)
			return e.sign(bob, &tx.CloseSession{Session: s})
		}, tx.ErrSessionNotAccepted},
		{"send after leaving", nil, func(e *env) *tx.Tx {
			s := e.createSession(alice, bob)
			e.do(bob, &tx.AcceptSession{Session: s, Decision: tx.DecisionDecline})
			return e.sign(bob, &tx.SendMessage{Session: s, Ciphertext: []byte("x")})
		}, tx.ErrParticipantLeft},
		{"leave twice", nil, func(e *env) *tx.Tx {
			s := e.createRequest(alice, bob)
			e.do(bob, &tx.AcceptSession{Session: s, Decision: tx.DecisionDecline})
			return e.sign(bob, &tx.AcceptSession{Session: s, Decision: tx.DecisionDecline})
		}, tx.ErrParticipantLeft},
		{"accept an expired session", map[string]any{"sessionTTL": 60}, func(e *env) *tx.Tx {
			s := e.createRequest(alice, bob)
			e.clock.Advance(61 * time.Second)
			return e.sign(bob, &tx.AcceptSession{Session: s})
		}, tx.ErrSessionExpired},
		{"accept someone else's session", nil, func(e *env) *tx.Tx {
			s := e.createRequest(alice, bob)
			return e.sign(carol, &tx.AcceptSession{Session: s})
		}, tx.ErrNotParticipant},

		// Channel roles and moderation.
		{"join invite-only without invite", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyInviteOnly)
			return e.sign(alice, &tx.JoinChannel{Channel: c})
		}, tx.ErrNotInvited},
		{"join while banned", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			e.do(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, alice)}})
			return e.sign(alice, &tx.JoinChannel{Channel: c})
		}, tx.ErrBanned},
		{"member moderates", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			e.do(alice, &tx.JoinChannel{Channel: c})
			return e.sign(alice, &tx.ModerateChannel{Channel: c, Action: tx.ActionInvite, Members: []crypto.SessionID{sid(t, bob)}})
		}, tx.ErrNotModerator},
		{"moderator appoints a moderator", nil, func(e *env) *tx.Tx {
			c := e.moderated(carol, alice)
			e.do(bob, &tx.JoinChannel{Channel: c})
			return e.sign(alice, &tx.ModerateChannel{Channel: c, Action: tx.ActionMakeModerator, Members: []crypto.SessionID{sid(t, bob)}})
		}, tx.ErrNotOwner},
		{"moderator bans a moderator", nil, func(e *env) *tx.Tx {
			c := e.moderated(carol, alice, bob)
			return e.sign(alice, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, bob)}})
		}, tx.ErrTargetIsModerator},
		{"moderator bans the owner", nil, func(e *env) *tx.Tx {
			c := e.moderated(carol, alice)
			return e.sign(alice, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, carol)}})
		}, tx.ErrTargetIsOwner},
		{"invite a member", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			e.do(alice, &tx.JoinChannel{Channel: c})
			return e.sign(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionInvite, Members: []crypto.SessionID{sid(t, bob), sid(t, alice)}})
		}, tx.ErrAlreadyMember},
		{"invite twice", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyInviteOnly)
			e.do(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionInvite, Members: []crypto.SessionID{sid(t, alice)}})
			return e.sign(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionInvite, Members: []crypto.SessionID{sid(t, alice)}})
		}, tx.ErrAlreadyInvited},
		{"invite a banned identity", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyInviteOnly)
			e.do(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, alice)}})
			return e.sign(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionInvite, Members: []crypto.SessionID{sid(t, alice)}})
		}, tx.ErrBanned},
		{"revoke a missing invite", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyInviteOnly)
			return e.sign(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionRevokeInvite, Members: []crypto.SessionID{sid(t, alice)}})
		}, tx.ErrNotInvited},
		{"remove a non-member", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			return e.sign(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionRemove, Members: []crypto.SessionID{sid(t, alice)}})
		}, tx.ErrNotMember},
		{"ban twice", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			e.do(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, alice)}})
			return e.sign(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, alice)}})
		}, tx.ErrAlreadyBanned},
		{"unban the unbanned", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			return e.sign(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionUnban, Members: []crypto.SessionID{sid(t, alice)}})
		}, tx.ErrNotBanned},
		{"appoint a moderator twice", nil, func(e *env) *tx.Tx {
			c := e.moderated(carol, alice)
			return e.sign(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionMakeModerator, Members: []crypto.SessionID{sid(t, alice)}})
		}, tx.ErrAlreadyModerator},
		{"appoint a non-member", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			return e.sign(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionMakeModerator, Members: []crypto.SessionID{sid(t, alice)}})
		}, tx.ErrNotMember},
		{"revoke a non-moderator", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			e.do(alice, &tx.JoinChannel{Channel: c})
			return e.sign(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionRevokeModerator, Members: []crypto.SessionID{sid(t, alice)}})
		}, tx.ErrNotAModerator},
		{"moderate an unregistered identity", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			return e.sign(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, stranger)}})
		}, tx.ErrUnknownMember},
		{"policy by a moderator", nil, func(e *env) *tx.Tx {
			c := e.moderated(carol, alice)
			return e.sign(alice, &tx.SetChannelPolicy{Channel: c, JoinPolicy: tx.PolicyInviteOnly})
		}, tx.ErrNotOwner},
		{"delete another member's post", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			e.do(alice, &tx.JoinChannel{Channel: c})
			e.do(carol, &tx.PostChannel{Channel: c, Ciphertext: []byte("owner's")})
			return e.sign(alice, &tx.DeletePosts{Channel: c, Seqs: []uint64{1}})
		}, tx.ErrNotPostAuthor},
		{"delete a post not yet posted", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			return e.sign(carol, &tx.DeletePosts{Channel: c, Seqs: []uint64{1}})
		}, tx.ErrUnknownPost},

		// Prekeys and claims.
		{"signed prekey expired", nil, func(e *env) *tx.Tx {
			return e.sign(bob, &tx.PublishPrekeys{Signed: &tx.SignedPrekey{ID: 1, ExpiresAt: e.clock.Now().UnixMilli() - 1, KEMPublicKey: carol.KEMPublicKey}})
		}, tx.ErrPrekeyExpiry},
		{"signed prekey valid too long", nil, func(e *env) *tx.Tx {
			return e.sign(bob, &tx.PublishPrekeys{Signed: &tx.SignedPrekey{ID: 1, ExpiresAt: e.clock.Now().UnixMilli() + 31*86400*1000, KEMPublicKey: carol.KEMPublicKey}})
		}, tx.ErrPrekeyExpiry},
		{"signed prekey ID reused", nil, func(e *env) *tx.Tx {
			e.do(bob, e.signedPrekey(3))
			return e.sign(bob, e.signedPrekey(3))
		}, tx.ErrPrekeyIDOrder},
		{"signed prekey ID jumps over 2^20", nil, func(e *env) *tx.Tx {
			e.do(bob, e.signedPrekey(3))
			return e.sign(bob, e.signedPrekey(3+config.MaxPrekeyIDStep+1))
		}, tx.ErrPrekeyIDOrder},
		{"one-time prekey ID reused", nil, func(e *env) *tx.Tx {
			e.do(bob, oneTimes(1, 4))
			return e.sign(bob, oneTimes(4, 1))
		}, tx.ErrPrekeyIDOrder},
		{"one-time prekey ID jumps over 2^20", nil, func(e *env) *tx.Tx {
			return e.sign(bob, oneTimes(config.MaxPrekeyIDStep+1, 1))
		}, tx.ErrPrekeyIDOrder},
		{"more than 100 unclaimed", nil, func(e *env) *tx.Tx {
			e.do(bob, oneTimes(1, 32))
			e.do(bob, oneTimes(33, 32))
			e.do(bob, oneTimes(65, 32))
			return e.sign(bob, oneTimes(97, 5))
		}, tx.ErrTooManyPrekeys},
		{"claim an unknown prekey", nil, func(e *env) *tx.Tx {
			e.do(bob, &tx.SetContact{Peer: sid(t, alice), Status: tx.ContactTrusted})
			e.withPrekeys(bob, 4)
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 5)}})
		}, tx.ErrUnknownPrekey},
		{"claim a claimed prekey", nil, func(e *env) *tx.Tx {
			e.do(bob, &tx.SetContact{Peer: sid(t, alice), Status: tx.ContactTrusted})
			e.withPrekeys(bob, 4)
			e.do(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 2)}})
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 2)}})
		}, tx.ErrPrekeyClaimed},
		{"claim a retired prekey", nil, func(e *env) *tx.Tx {
			e.do(bob, &tx.SetContact{Peer: sid(t, alice), Status: tx.ContactTrusted})
			e.withPrekeys(bob, 4)
			e.do(bob, &tx.PublishPrekeys{RetireThrough: 3})
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 2)}})
		}, tx.ErrPrekeyClaimed},
		{"claim without a signed prekey", nil, func(e *env) *tx.Tx {
			e.do(bob, oneTimes(1, 4))
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 0)}})
		}, tx.ErrSignedPrekey},
		{"claim an expired signed prekey", nil, func(e *env) *tx.Tx {
			e.do(bob, &tx.PublishPrekeys{Signed: &tx.SignedPrekey{ID: 1, ExpiresAt: e.clock.Now().UnixMilli() + 60_000, KEMPublicKey: carol.KEMPublicKey}})
			e.clock.Advance(2 * time.Minute)
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 0)}})
		}, tx.ErrSignedPrekey},
		{"claim a signed prekey two generations old", nil, func(e *env) *tx.Tx {
			e.do(bob, e.signedPrekey(1))
			e.do(bob, e.signedPrekey(2))
			e.do(bob, e.signedPrekey(3))
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 0)}})
		}, tx.ErrSignedPrekey},
		{"claim a signed prekey never published", nil, func(e *env) *tx.Tx {
			e.do(bob, e.signedPrekey(1))
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 2, 0)}})
		}, tx.ErrSignedPrekey},
		{"claim 0 while a one-time prekey is claimable", nil, func(e *env) *tx.Tx {
			e.withPrekeys(bob, 30)
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 0)}})
		}, tx.ErrPrekeyAvailable},
		{"stranger claims from the reserve", nil, func(e *env) *tx.Tx {
			e.withPrekeys(bob, 20) // the default reserve is 20
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 1)}})
		}, tx.ErrPrekeyReserved},
		{"stranger claim budget spent", map[string]any{"prekeys": map[string]any{"strangerClaims": map[string]any{"burst": 1, "refillSeconds": 3600}, "strangerReserve": 0}}, func(e *env) *tx.Tx {
			e.withPrekeys(bob, 10)
			e.do(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 1)}})
			return e.sign(carol, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 2)}})
		}, tx.ErrRateLimited},
		{"stranger claims a second time while its request is pending", nil, func(e *env) *tx.Tx {
			e.withPrekeys(bob, 30)
			e.do(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 1)}})
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}, Claims: []tx.Claim{cl(sid(t, bob), 1, 2)}})
		}, tx.ErrStrangerClaim},
		{"stranger claims on a target that has not accepted", nil, func(e *env) *tx.Tx {
			e.withPrekeys(carol, 30)
			e.do(bob, &tx.SetContact{Peer: sid(t, alice), Status: tx.ContactTrusted})
			s := e.createSession(alice, bob, carol) // carol pending
			return e.sign(bob, &tx.SendMessage{Session: s, Claims: []tx.Claim{cl(sid(t, carol), 1, 1)}, Ciphertext: []byte("hs")})
		}, tx.ErrStrangerClaim},
		{"a pair claims a fifth time in a session", nil, func(e *env) *tx.Tx {
			e.do(carol, &tx.SetContact{Peer: sid(t, bob), Status: tx.ContactTrusted})
			e.withPrekeys(carol, 30)
			s := e.createSession(alice, bob, carol)
			for k := uint32(1); k <= config.MaxClaimsPerPair; k++ {
				e.do(bob, &tx.SendMessage{Session: s, Claims: []tx.Claim{cl(sid(t, carol), 1, k)}, Ciphertext: []byte("hs")})
			}
			return e.sign(bob, &tx.SendMessage{Session: s, Claims: []tx.Claim{cl(sid(t, carol), 1, 9)}, Ciphertext: []byte("again")})
		}, tx.ErrClaimLimit},
		{"claim from a departed participant", nil, func(e *env) *tx.Tx {
			e.withPrekeys(carol, 30)
			s := e.createSession(alice, bob, carol)
			e.do(carol, &tx.AcceptSession{Session: s, Decision: tx.DecisionDecline})
			return e.sign(bob, &tx.SendMessage{Session: s, Claims: []tx.Claim{cl(sid(t, carol), 1, 1)}, Ciphertext: []byte("hi")})
		}, tx.ErrParticipantLeft},
		{"claim from a non-participant", nil, func(e *env) *tx.Tx {
			e.withPrekeys(carol, 30)
			s := e.createSession(alice, bob)
			return e.sign(bob, &tx.SendMessage{Session: s, Claims: []tx.Claim{cl(sid(t, carol), 1, 1)}, Ciphertext: []byte("hi")})
		}, tx.ErrNotParticipant},
		{"claim from a participant who blocked the claimer", nil, func(e *env) *tx.Tx {
			e.withPrekeys(carol, 30)
			e.do(bob, &tx.SetContact{Peer: sid(t, alice), Status: tx.ContactTrusted})
			e.do(carol, &tx.SetContact{Peer: sid(t, alice), Status: tx.ContactTrusted})
			s := e.createSession(alice, bob, carol)
			e.do(carol, &tx.SetContact{Peer: sid(t, bob), Status: tx.ContactBlocked})
			return e.sign(bob, &tx.SendMessage{Session: s, Claims: []tx.Claim{cl(sid(t, carol), 1, 0)}, Ciphertext: []byte("hi")})
		}, tx.ErrBlocked},

		// Registration (review C1, H1, A1, L5).
		{"registration nonce 1", nil, func(e *env) *tx.Tx {
			return e.signNonce(stranger, 1, &tx.RegisterIdentity{KEMPublicKey: stranger.KEMPublicKey, DSAPublicKey: stranger.DSAPublicKey})
		}, tx.ErrRegistrationNonce},
		{"registration anchored beyond the window", map[string]any{"registration": map[string]any{"memoryKiB": 8, "prefilterBits": 0, "workBits": 0, "anchorWindow": 2}}, func(e *env) *tx.Tx {
			e.do(alice, &tx.CreateChannel{Name: "a"})
			e.do(alice, &tx.CreateChannel{Name: "b"})
			return e.sign(stranger, &tx.RegisterIdentity{KEMPublicKey: stranger.KEMPublicKey, DSAPublicKey: stranger.DSAPublicKey, AnchorHeight: 0})
		}, tx.ErrAnchor},
		{"registration anchored in the future", nil, func(e *env) *tx.Tx {
			h, _ := e.anchor()
			return e.sign(stranger, &tx.RegisterIdentity{KEMPublicKey: stranger.KEMPublicKey, DSAPublicKey: stranger.DSAPublicKey, AnchorHeight: h + 5})
		}, tx.ErrAnchor},

		// Consent (review H3, H5, M3, M4, A17).
		{"contact status unchanged", nil, func(e *env) *tx.Tx {
			e.do(alice, &tx.SetContact{Peer: sid(t, bob), Status: tx.ContactBlocked})
			return e.sign(alice, &tx.SetContact{Peer: sid(t, bob), Status: tx.ContactBlocked})
		}, tx.ErrUnchanged},
		{"removing a contact that is none", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.SetContact{Peer: sid(t, bob), Status: tx.ContactNone})
		}, tx.ErrUnchanged},
		{"request policy unchanged", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.SetRequestPolicy{Policy: tx.RequestsFromAnyone})
		}, tx.ErrUnchanged},
		{"request to someone who takes contacts only", nil, func(e *env) *tx.Tx {
			e.do(bob, &tx.SetRequestPolicy{Policy: tx.RequestsFromContacts})
			return e.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, carol), sid(t, bob)}})
		}, tx.ErrRequestsClosed},
		{"a member closes a group", nil, func(e *env) *tx.Tx {
			s := e.createSession(alice, bob, carol)
			e.acceptAll(s, bob)
			return e.sign(bob, &tx.CloseSession{Session: s})
		}, tx.ErrNotCreator},
		{"a ninth message in a request", nil, func(e *env) *tx.Tx {
			s := e.createRequest(alice, bob)
			for i := 0; i < config.RequestBackfill; i++ {
				e.issue(e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte{byte(i)}}))
			}
			e.accept()
			return e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("9")})
		}, tx.ErrRequestFull},
		{"a participant over its share", map[string]any{"maxMessages": 5}, func(e *env) *tx.Tx {
			s := e.createSession(alice, bob)
			e.acceptAll(s, bob)
			for i := 0; i < 3; i++ { // ⌈5 / 2⌉ = 3
				e.issue(e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte{byte(i)}}))
			}
			e.accept()
			return e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("4")})
		}, tx.ErrMaxMessages},

		// Channels (review M2, L8, L11).
		{"post inside the slow mode", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			e.do(alice, &tx.JoinChannel{Channel: c})
			e.do(carol, &tx.SetChannelPolicy{Channel: c, JoinPolicy: tx.PolicyOpen, SlowModeSeconds: 30})
			e.do(alice, &tx.PostChannel{Channel: c, Ciphertext: []byte("1")})
			return e.sign(alice, &tx.PostChannel{Channel: c, Ciphertext: []byte("2")})
		}, tx.ErrSlowMode},
		{"slow mode over a day", nil, func(e *env) *tx.Tx {
			c := e.channelOf(carol, tx.PolicyOpen)
			return e.sign(carol, &tx.SetChannelPolicy{Channel: c, JoinPolicy: tx.PolicyOpen, SlowModeSeconds: config.MaxSlowModeSeconds + 1})
		}, tx.ErrInvalidSlowMode},
		{"a moderator lifts the owner's ban", nil, func(e *env) *tx.Tx {
			c := e.moderated(carol, alice)
			e.do(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, bob)}})
			return e.sign(alice, &tx.ModerateChannel{Channel: c, Action: tx.ActionUnban, Members: []crypto.SessionID{sid(t, bob)}})
		}, tx.ErrNotOwner},
		{"a moderator removes itself", nil, func(e *env) *tx.Tx {
			c := e.moderated(carol, alice)
			return e.sign(alice, &tx.ModerateChannel{Channel: c, Action: tx.ActionRemove, Members: []crypto.SessionID{sid(t, alice)}})
		}, tx.ErrTargetIsModerator},
		{"channel name with a bidi override", nil, func(e *env) *tx.Tx {
			return e.sign(alice, &tx.CreateChannel{Name: "abc\u202edef"})
		}, tx.ErrInvalidChannelName},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			bad := tc.make(e)
			e.clock.Advance(time.Second)

			// In a block from a peer, first (cold caches).
			last, _ := e.vm.LastAccepted(ctx)
			parent, err := e.vm.GetBlock(ctx, last)
			if err != nil {
				t.Fatal(err)
			}
			blk, err := e.blockFor(last, parent.Height()+1, e.clock.Now().UnixMilli(), []*tx.Tx{bad})
			if err != nil {
				t.Fatal(err)
			}
			if pb, err := e.vm.ParseBlock(ctx, blk.Bytes()); err != nil {
				mustIs(t, err, tc.want) // refused while decoding
			} else {
				err := pb.Verify(ctx)
				mustIs(t, err, ErrInvalidBlockTx)
				mustIs(t, err, tc.want)
			}

			// At admission.
			_, err = e.vm.IssueTx(bad.Bytes())
			mustIs(t, err, tc.want)
			if !tx.IsRefusal(err) {
				t.Fatalf("%v is not a refusal", err)
			}
			if n := e.vm.pool.mempool.Len(); n != 0 {
				t.Fatalf("mempool holds %d txs", n)
			}
		})
	}
}

// failingWork returns a registration work value for id, anchored to the
// genesis block (anchor height 0), that fails the chain's pre-filter
// (prefilter true) or its Argon2id difficulty.
func failingWork(t *testing.T, e *env, id *crypto.Identity, prefilter bool) uint64 {
	t.Helper()
	p := e.vm.Config().Registration
	genesisID, err := state.New(e.vm.db).BlockIDAtHeight(0)
	if err != nil {
		t.Fatal(err)
	}
	seed := tx.WorkSeed(e.vm.ChainID(), sid(t, id), 0, genesisID)
	for w := uint64(0); w < 1<<16; w++ {
		pass := tx.PrefilterPasses(tx.WorkPre(seed, w), p)
		if prefilter && !pass {
			return w
		}
		if !prefilter && pass && tx.CheckWork(e.vm.ChainID(), seed, w, p) != nil {
			return w
		}
	}
	t.Fatal("no failing work value")
	return 0
}

func TestMempoolAdmission(t *testing.T) {
	e := newEnv(t, nil)
	e.vm.pool.mempool = mempool.New(mempool.Limits{MaxTxs: 3, MaxBytes: 1 << 20, MaxPerAuthor: 2})
	alice, bob, carol := identity(t, 0), identity(t, 1), identity(t, 2)
	a0 := e.sign(alice, &tx.CreateChannel{Name: "a0"})
	e.issue(a0)
	if _, err := e.vm.IssueTx(a0.Bytes()); !errors.Is(err, mempool.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	e.issue(e.sign(alice, &tx.CreateChannel{Name: "a1"})) // pipelined nonce 1
	if _, err := e.vm.IssueTx(e.sign(alice, &tx.CreateChannel{Name: "a2"}).Bytes()); !errors.Is(err, mempool.ErrAuthorLimit) {
		t.Fatalf("author limit: %v", err)
	}
	e.issue(e.sign(bob, &tx.CreateChannel{Name: "b0"}))
	if _, err := e.vm.IssueTx(e.sign(carol, &tx.CreateChannel{Name: "c0"}).Bytes()); !errors.Is(err, mempool.ErrFull) {
		t.Fatalf("full: %v", err)
	}
	if n, _ := e.vm.NextNonce(sid(t, alice)); n != 2 {
		t.Fatalf("next nonce %d, want 2", n)
	}
	// Block order is admission order.
	b := e.accept()
	if len(b.Txs) != 3 || b.Txs[0].ID() != a0.ID() || b.Txs[2].Author != sid(t, bob) {
		t.Fatal("block order")
	}
	if _, err := e.vm.IssueTx(a0.Bytes()); !errors.Is(err, ErrAlreadyAccepted) {
		t.Fatalf("accepted again: %v", err)
	}
	if _, err := e.vm.IssueTx([]byte{1, 2, 3}); !errors.Is(err, tx.ErrMalformed) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestInvalidBlocks(t *testing.T) {
	e := newEnv(t, nil)
	alice := identity(t, 0)
	e.do(alice, &tx.CreateChannel{Name: "c"})
	last, _ := e.vm.LastAccepted(ctx)
	parent, _ := e.vm.GetBlock(ctx, last)
	good := e.sign(alice, &tx.CreateChannel{Name: "d"})
	now := e.clock.Now().UnixMilli()
	pts := parent.Timestamp().UnixMilli()
	cases := []struct {
		name   string
		parent ids.ID
		height uint64
		ts     int64
		want   error
	}{
		{"wrong height", last, parent.Height() + 2, now, ErrWrongHeight},
		{"timestamp before parent", last, parent.Height() + 1, pts - 1, ErrTimestampDecreased},
		{"timestamp in the future", last, parent.Height() + 1, now + config.MaxFutureBlockTime + 1000, ErrFutureTimestamp},
		{"unknown parent", ids.ID{1}, parent.Height() + 1, now, ErrUnknownParent},
		{"accepted but stale parent", parent.Parent(), parent.Height(), now, ErrParentNotAccepted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			blk, err := e.blockFor(tc.parent, tc.height, tc.ts, []*tx.Tx{good})
			if err != nil {
				t.Fatal(err)
			}
			b, err := e.vm.ParseBlock(ctx, blk.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			mustIs(t, b.Verify(ctx), tc.want)
		})
	}
	blk, _ := e.blockFor(last, parent.Height()+1, now, []*tx.Tx{good})
	for _, raw := range [][]byte{append(bytes.Clone(blk.Bytes()), 0), blk.Bytes()[:len(blk.Bytes())-1], nil} {
		if _, err := e.vm.ParseBlock(ctx, raw); !errors.Is(err, block.ErrMalformed) {
			t.Fatalf("ParseBlock(%d bytes): %v", len(raw), err)
		}
	}
	// Accepting an unverified block fails.
	b, _ := e.vm.ParseBlock(ctx, blk.Bytes())
	mustIs(t, b.Accept(ctx), ErrNotVerified)
}

// TestParallelVerifyFindsBadSignature: in a peer's block of many
// transactions verified in parallel, one bad signature fails the block and
// is named by index; the good signatures are cached for the next try.
func TestParallelVerifyFindsBadSignature(t *testing.T) {
	e := newEnv(t, nil)
	s := e.createSession(identity(t, 0), identity(t, 1))
	var list []*tx.Tx
	for i := 0; i < 20; i++ {
		author := identity(t, i%2)
		list = append(list, e.signNonce(author, uint64(1+i/2)-uint64(i%2), &tx.SendMessage{Session: s, Ciphertext: []byte{byte(i)}}))
	}
	raw := bytes.Clone(list[13].Bytes())
	raw[len(raw)-1] ^= 0xff
	bad, err := tx.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	withBad := append(append(append([]*tx.Tx(nil), list[:13]...), bad), list[14:]...)
	last, _ := e.vm.LastAccepted(ctx)
	parent, _ := e.vm.GetBlock(ctx, last)
	e.clock.Advance(time.Second)
	blk, err := e.blockFor(last, parent.Height()+1, e.clock.Now().UnixMilli(), withBad)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := e.vm.ParseBlock(ctx, blk.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	err = pb.Verify(ctx)
	mustIs(t, err, tx.ErrBadSignature)
	if !strings.Contains(err.Error(), "transaction 13") {
		t.Fatalf("error does not name the transaction: %v", err)
	}
	before := e.vm.verifier.verified.Load()
	good, _ := e.blockFor(last, parent.Height()+1, e.clock.Now().UnixMilli(), list)
	gb, err := e.vm.ParseBlock(ctx, good.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := gb.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.vm.verifier.verified.Load() - before; n != 1 {
		t.Fatalf("%d signatures verified again, want 1 (only the one not seen)", n)
	}
}
