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
		list = append(list, e.signNonce(author, uint64(1+i/2), &tx.SendMessage{Session: s, Ciphertext: []byte{byte(i)}}))
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
