package execute

import (
	"errors"
	"testing"

	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/tx"
)

// capsChain executes transactions on a fresh state with the default
// config, one block per transaction, registering identities without work
// (execution never checks it).
type capsChain struct {
	t      *testing.T
	st     *state.State
	ctx    Context
	nonces map[crypto.SessionID]uint64
}

func newCapsChain(t *testing.T) *capsChain {
	return &capsChain{t: t, st: state.New(memdb.New()), nonces: map[crypto.SessionID]uint64{},
		ctx: Context{ChainID: ids.ID{0xca}, Config: config.Default(), Height: 1, Timestamp: 1_767_225_600_000, ParentID: ids.ID{1}}}
}

func (c *capsChain) next() {
	c.ctx.Height++
	c.ctx.Timestamp += 1000
	c.ctx.ParentID = ids.ID{byte(c.ctx.Height)}
	if err := BeginBlock(c.st, c.ctx); err != nil {
		c.t.Fatal(err)
	}
}

// run executes p by id and returns its verdict.
func (c *capsChain) run(id *crypto.Identity, p tx.Payload) error {
	c.t.Helper()
	author, _ := crypto.ParseSessionID(id.SessionID)
	signed, err := tx.Sign(id, c.ctx.ChainID, c.nonces[author], p)
	if err != nil {
		c.t.Fatal(err)
	}
	c.next()
	if err := Tx(c.st, c.ctx, 0, signed); err != nil {
		return err
	}
	c.nonces[author]++
	return nil
}

func (c *capsChain) must(id *crypto.Identity, p tx.Payload) {
	c.t.Helper()
	if err := c.run(id, p); err != nil {
		c.t.Fatalf("%T: %v", p, err)
	}
}

func (c *capsChain) refused(id *crypto.Identity, p tx.Payload, want error) {
	c.t.Helper()
	if err := c.run(id, p); !errors.Is(err, want) {
		c.t.Fatalf("%T: %v, want %v", p, err, want)
	}
}

func (c *capsChain) register(seed byte) (*crypto.Identity, crypto.SessionID) {
	c.t.Helper()
	id, err := crypto.IdentityFromSeed([32]byte{seed, 0xca})
	if err != nil {
		c.t.Fatal(err)
	}
	c.must(id, &tx.RegisterIdentity{KEMPublicKey: id.KEMPublicKey, DSAPublicKey: id.DSAPublicKey, AnchorHeight: c.ctx.Height})
	s, _ := crypto.ParseSessionID(id.SessionID)
	return id, s
}

// setAccount changes an identity's account as if it had made that many
// records already (filling a cap by transactions takes tens of thousands
// of them; the counting is what the cap tests check).
func (c *capsChain) setAccount(s crypto.SessionID, f func(*state.Account)) {
	c.t.Helper()
	a, err := c.st.GetAccount(s)
	if err != nil {
		c.t.Fatal(err)
	}
	f(&a)
	if err := c.st.PutAccount(s, &a); err != nil {
		c.t.Fatal(err)
	}
}

func (c *capsChain) account(s crypto.SessionID) state.Account {
	a, err := c.st.GetAccount(s)
	if err != nil {
		c.t.Fatal(err)
	}
	return a
}

func peer(b byte) crypto.SessionID { return crypto.SessionID{Prefix: 0x07, Digest: [32]byte{b, 0xee}} }

// TestStateCaps (review H2, H3, M1): the per-identity caps on what stays
// in state. Blocks are capped apart from contacts, so a victim who blocked
// 10,000 sybils still adds a contact, and one whose contacts are full still
// blocks (H3); an identity belongs to at most 1,000 channels it does not
// own, while others still join (M1); a channel owner holds at most 16,384
// invites and bans over its channels, a ban replacing an invite is not
// counted twice, and unbanning frees a place (H2).
func TestStateCaps(t *testing.T) {
	c := newCapsChain(t)
	victim, vs := c.register(1)
	// Blocks full: blocking is refused, adding a contact is not.
	c.setAccount(vs, func(a *state.Account) { a.Blocked = config.MaxBlocked })
	c.refused(victim, &tx.SetContact{Peer: peer(1), Status: tx.ContactBlocked}, tx.ErrMaxBlocked)
	c.must(victim, &tx.SetContact{Peer: peer(2), Status: tx.ContactTrusted})
	// Contacts full: adding a contact is refused, blocking is not.
	c.setAccount(vs, func(a *state.Account) { a.Blocked, a.Contacts = 0, config.MaxContacts })
	c.refused(victim, &tx.SetContact{Peer: peer(3), Status: tx.ContactTrusted}, tx.ErrMaxContacts)
	c.must(victim, &tx.SetContact{Peer: peer(4), Status: tx.ContactBlocked})
	if a := c.account(vs); a.Blocked != 1 || a.Contacts != config.MaxContacts {
		t.Fatalf("counts %+v", a)
	}
	// Unblocking frees the block's place, not a contact's.
	c.must(victim, &tx.SetContact{Peer: peer(4), Status: tx.ContactNone})
	if a := c.account(vs); a.Blocked != 0 || a.Contacts != config.MaxContacts {
		t.Fatalf("counts after unblocking %+v", a)
	}

	// Memberships.
	owner, _ := c.register(2)
	joiner, js := c.register(3)
	other, _ := c.register(4)
	c.must(owner, &tx.CreateChannel{Name: "open", JoinPolicy: tx.PolicyOpen})
	ch := tx.ChannelIDFor(c.ctx.ChainID, mustSID(t, owner), 1)
	c.setAccount(js, func(a *state.Account) { a.Memberships = config.MaxMemberships })
	c.refused(joiner, &tx.JoinChannel{Channel: ch}, tx.ErrMaxMemberships)
	c.must(other, &tx.JoinChannel{Channel: ch})
	c.setAccount(js, func(a *state.Account) { a.Memberships = config.MaxMemberships - 1 })
	c.must(joiner, &tx.JoinChannel{Channel: ch})
	c.must(joiner, &tx.LeaveChannel{Channel: ch})
	if a := c.account(js); a.Memberships != config.MaxMemberships-1 {
		t.Fatalf("memberships after leaving: %d", a.Memberships)
	}
	// Owning does not count: the owner's own channel is not a membership.
	if a := c.account(mustSID(t, owner)); a.Memberships != 0 {
		t.Fatalf("owner's memberships %d", a.Memberships)
	}

	// Invites and bans per owner.
	mod, os := c.register(5)
	_ = mod
	invited, is := c.register(6)
	newcomer, ns := c.register(7)
	c.must(mod, &tx.CreateChannel{Name: "club", JoinPolicy: tx.PolicyInviteOnly})
	club := tx.ChannelIDFor(c.ctx.ChainID, os, 1)
	c.must(mod, &tx.ModerateChannel{Channel: club, Action: tx.ActionInvite, Members: []crypto.SessionID{is}})
	if a := c.account(os); a.Records != 1 {
		t.Fatalf("records %d", a.Records)
	}
	c.setAccount(os, func(a *state.Account) { a.Records = config.MaxModerationRecords })
	c.refused(mod, &tx.ModerateChannel{Channel: club, Action: tx.ActionInvite, Members: []crypto.SessionID{ns}}, tx.ErrTooManyRecords)
	// A ban of the invited identity replaces its invite: allowed at the cap.
	c.must(mod, &tx.ModerateChannel{Channel: club, Action: tx.ActionBan, Members: []crypto.SessionID{is}})
	if a := c.account(os); a.Records != config.MaxModerationRecords {
		t.Fatalf("records after a ban replacing an invite: %d", a.Records)
	}
	c.refused(mod, &tx.ModerateChannel{Channel: club, Action: tx.ActionBan, Members: []crypto.SessionID{ns}}, tx.ErrTooManyRecords)
	// Unbanning frees a place: the newcomer is invited and joins.
	c.must(mod, &tx.ModerateChannel{Channel: club, Action: tx.ActionUnban, Members: []crypto.SessionID{is}})
	c.must(mod, &tx.ModerateChannel{Channel: club, Action: tx.ActionInvite, Members: []crypto.SessionID{ns}})
	c.must(newcomer, &tx.JoinChannel{Channel: club})
	if a := c.account(os); a.Records != config.MaxModerationRecords-1 {
		t.Fatalf("records after the join used the invite: %d", a.Records)
	}
	_ = invited
}

func mustSID(t *testing.T, id *crypto.Identity) crypto.SessionID {
	s, err := crypto.ParseSessionID(id.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
