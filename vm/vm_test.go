package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	consensusctx "github.com/luxfi/consensus/context"
	"github.com/luxfi/consensus/core/choices"
	smblock "github.com/luxfi/consensus/engine/chain/block"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/block"
	"github.com/luxfi/session/vm/tx"
)

var ctx = context.Background()

func TestLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	v := e.vm
	genesisID, err := v.LastAccepted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := v.GetBlockIDAtHeight(ctx, 0); err != nil || id != genesisID {
		t.Fatalf("height 0: %s %v, want genesis %s", id, err, genesisID)
	}

	// A fresh identity registers itself.
	newcomer := identity(t, 5)
	reg := e.sign(newcomer, &tx.RegisterIdentity{KEMPublicKey: newcomer.KEMPublicKey, DSAPublicKey: newcomer.DSAPublicKey})
	e.issue(reg)
	if s, _ := v.TxStatus(reg.ID()); s.Status != TxPending {
		t.Fatalf("status %v, want pending", s.Status)
	}
	msg, err := v.WaitForEvent(ctx)
	if err != nil || msg != smblock.PendingTxs {
		t.Fatalf("WaitForEvent = %v, %v", msg, err)
	}

	e.clock.Advance(time.Second)
	sb, err := v.BuildBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sb.Status() != uint8(choices.Processing) || sb.Height() != 1 || sb.Parent() != genesisID {
		t.Fatalf("built block: status %d height %d parent %s", sb.Status(), sb.Height(), sb.Parent())
	}
	// ParseBlock round-trips and returns the same (verified) block.
	parsed, err := v.ParseBlock(ctx, sb.Bytes())
	if err != nil || parsed.ID() != sb.ID() || !bytes.Equal(parsed.Bytes(), sb.Bytes()) {
		t.Fatalf("ParseBlock: %v", err)
	}
	if err := sb.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sb.Verify(ctx); err != nil { // twice is fine
		t.Fatal(err)
	}
	if got, err := v.GetBlock(ctx, sb.ID()); err != nil || got.ID() != sb.ID() {
		t.Fatalf("GetBlock processing: %v", err)
	}
	if err := sb.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.SetPreference(ctx, sb.ID()); err != nil {
		t.Fatal(err)
	}
	if sb.Status() != uint8(choices.Accepted) {
		t.Fatal("not accepted")
	}
	if last, _ := v.LastAccepted(ctx); last != sb.ID() {
		t.Fatal("last accepted")
	}
	if id, err := v.GetBlockIDAtHeight(ctx, 1); err != nil || id != sb.ID() {
		t.Fatalf("GetBlockIDAtHeight(1) = %s, %v", id, err)
	}
	if _, err := v.GetBlockIDAtHeight(ctx, 2); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("height 2: %v", err)
	}
	if s, _ := v.TxStatus(reg.ID()); s.Status != TxAccepted || s.Height != 1 || s.Index != 0 {
		t.Fatalf("tx status %+v", s)
	}
	got, err := v.Identity(sid(t, newcomer))
	if err != nil || !bytes.Equal(got.DSAPublicKey, newcomer.DSAPublicKey) || got.Height != 1 {
		t.Fatalf("identity: %+v %v", got, err)
	}
	// An accepted block parsed again comes back accepted.
	again, err := v.ParseBlock(ctx, sb.Bytes())
	if err != nil || again.Status() != uint8(choices.Accepted) {
		t.Fatalf("reparse accepted: %v", err)
	}
	// Nothing left to build.
	if _, err := v.BuildBlock(ctx); !errors.Is(err, ErrNoPendingTxs) {
		t.Fatalf("empty build: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := v.WaitForEvent(tctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForEvent on empty pool: %v", err)
	}
	if ver, _ := v.Version(ctx); ver != Version {
		t.Fatal(ver)
	}
	h, err := v.Health(ctx)
	if err != nil || h.Height != 1 || !h.Healthy {
		t.Fatalf("health %+v %v", h, err)
	}
}

func TestMessagingFlow(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, carol := identity(t, 0), identity(t, 1), identity(t, 2)
	sess := e.createSession(alice, bob)
	info, err := e.vm.Session(sess)
	if err != nil || info.Status != state.SessionActive || len(info.Participants) != 2 || info.Creator != sid(t, alice) {
		t.Fatalf("session %+v %v", info, err)
	}
	if info.ExpiresAt != info.CreatedAt+86400*1000 {
		t.Fatal("expiry")
	}
	// Pipelined: both messages in one block.
	e.issue(e.sign(alice, &tx.SendMessage{Session: sess, Ciphertext: []byte("hi bob")}))
	e.issue(e.sign(bob, &tx.SendMessage{Session: sess, Ciphertext: []byte("hi alice")}))
	b := e.accept()
	if len(b.Txs) != 2 {
		t.Fatalf("block has %d txs", len(b.Txs))
	}
	msgs, err := e.vm.Messages(sess, 0, 10)
	if err != nil || len(msgs) != 2 || msgs[0].Seq != 1 || msgs[1].Seq != 2 || string(msgs[1].Ciphertext) != "hi alice" {
		t.Fatalf("messages %v %v", msgs, err)
	}
	if after, _ := e.vm.Messages(sess, 1, 10); len(after) != 1 || after[0].Seq != 2 {
		t.Fatal("cursor")
	}
	inbox, err := e.vm.Inbox(sid(t, bob), 0, 10)
	if err != nil || len(inbox) != 1 || string(inbox[0].Ciphertext) != "hi bob" || inbox[0].Author != sid(t, alice) {
		t.Fatalf("bob inbox %v %v", inbox, err)
	}
	if in, _ := e.vm.Inbox(sid(t, carol), 0, 10); len(in) != 0 {
		t.Fatal("carol got mail")
	}
	// Channels: open join, members post, owner stays.
	ct := e.do(carol, &tx.CreateChannel{Name: "general"})
	ch := tx.ChannelIDFor(e.vm.ChainID(), ct.Author, ct.Nonce)
	e.do(alice, &tx.JoinChannel{Channel: ch})
	e.do(alice, &tx.PostChannel{Channel: ch, Ciphertext: []byte("post")})
	c, err := e.vm.Channel(ch)
	if err != nil || c.Members != 2 || c.Name != "general" {
		t.Fatalf("channel %+v %v", c, err)
	}
	members, _ := e.vm.ChannelMembers(ch, nil, 10)
	if len(members) != 2 {
		t.Fatal("members")
	}
	if posts, _ := e.vm.Messages(ch, 0, 10); len(posts) != 1 || posts[0].Author != sid(t, alice) {
		t.Fatal("posts")
	}
	e.do(alice, &tx.LeaveChannel{Channel: ch})
	if ok, _ := e.vm.IsChannelMember(ch, sid(t, alice)); ok {
		t.Fatal("still a member")
	}
	e.do(bob, &tx.CloseSession{Session: sess})
	if info, _ := e.vm.Session(sess); info.Status != state.SessionClosed || info.ClosedBy != sid(t, bob) {
		t.Fatal("not closed")
	}
	st, err := e.vm.Status()
	if err != nil || st.Counts.Identities != 4 || st.Counts.Sessions != 1 || st.Counts.Channels != 1 || st.Counts.MessagesTotal != 3 {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestReject(t *testing.T) {
	e := newEnv(t, nil)
	alice := identity(t, 0)
	tr := e.sign(alice, &tx.CreateChannel{Name: "x"})
	e.issue(tr)
	e.clock.Advance(time.Second)
	b, err := e.vm.BuildBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// While the block is processing there is nothing new to build.
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	if _, err := e.vm.WaitForEvent(tctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForEvent with tx in flight: %v", err)
	}
	cancel()
	if err := b.Reject(ctx); err != nil {
		t.Fatal(err)
	}
	if b.Status() != uint8(choices.Rejected) {
		t.Fatal("status")
	}
	if err := b.Accept(ctx); !errors.Is(err, ErrAlreadyDecided) {
		t.Fatalf("accept after reject: %v", err)
	}
	if _, err := e.vm.GetBlock(ctx, b.ID()); err == nil {
		t.Fatal("rejected block is stored")
	}
	// The transaction is still pending and builds again.
	if msg, err := e.vm.WaitForEvent(ctx); err != nil || msg != smblock.PendingTxs {
		t.Fatal("no event after reject")
	}
	b2 := e.accept()
	if len(b2.Txs) != 1 || b2.Txs[0].ID() != tr.ID() || b2.Height() != 1 {
		t.Fatal("rebuilt block")
	}
}

// TestSiblings verifies two competing children of the same parent, from two
// nodes, then accepts one.
func TestSiblings(t *testing.T) {
	g := genesisJSON(t, nil, identity(t, 0), identity(t, 1), identity(t, 2))
	clock := newTestClock()
	n1 := newEnvDB(t, memdb.New(), g, clock)
	n2 := newEnvDB(t, memdb.New(), g, clock)
	alice, bob := identity(t, 0), identity(t, 1)

	aliceTx := n1.sign(alice, &tx.CreateChannel{Name: "alice"})
	n1.issue(aliceTx)
	bobTx := n2.sign(bob, &tx.CreateChannel{Name: "bob"})
	n2.issue(bobTx)
	clock.Advance(time.Second)
	a, err := n1.vm.BuildBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := n2.vm.BuildBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n1.vm.ParseBlock(ctx, b2.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if b.Parent() != a.Parent() || b.ID() == a.ID() {
		t.Fatal("not siblings")
	}
	if err := b.Verify(ctx); err != nil {
		t.Fatalf("sibling verify: %v", err)
	}
	if err := a.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	// A child of the sibling verifies on the sibling's overlay.
	n2.issue(n2.sign(bob, &tx.CreateChannel{Name: "bob2"}))
	if err := n2.vm.SetPreference(ctx, b2.ID()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	c2, err := n2.vm.BuildBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := n1.vm.ParseBlock(ctx, c2.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(ctx); err != nil {
		t.Fatalf("child of sibling: %v", err)
	}

	if st, _ := n1.vm.Status(); st.ProcessingBlocks != 3 {
		t.Fatalf("%d processing blocks, want 3", st.ProcessingBlocks)
	}
	if err := b.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Reject(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := n1.vm.Status(); st.ProcessingBlocks != 0 || st.Height != 2 {
		t.Fatalf("after decisions: %+v", st)
	}
	chainID := n1.vm.ChainID()
	if _, err := n1.vm.Channel(tx.ChannelIDFor(chainID, sid(t, bob), 1)); err != nil {
		t.Fatalf("bob's second channel: %v", err)
	}
	if _, err := n1.vm.Channel(tx.ChannelIDFor(chainID, sid(t, alice), 0)); !errors.Is(err, state.ErrNotFound) {
		t.Fatal("rejected block's state leaked")
	}
	// Alice's transaction is still valid after the accepted chain and goes
	// into the next block.
	if err := n1.vm.SetPreference(ctx, c.ID()); err != nil {
		t.Fatal(err)
	}
	d := n1.accept()
	if len(d.Txs) != 1 || d.Txs[0].ID() != aliceTx.ID() || d.Height() != 3 {
		t.Fatalf("next block: %d txs at height %d", len(d.Txs), d.Height())
	}
	// Verifying a block on a decided-away parent fails.
	if err := a.Verify(ctx); !errors.Is(err, ErrAlreadyDecided) {
		t.Fatalf("verify rejected: %v", err)
	}
}

func TestInitializeErrors(t *testing.T) {
	g := genesisJSON(t, nil)
	cases := []struct {
		name    string
		chain   interface{}
		db      interface{}
		genesis []byte
		config  []byte
		msgChan interface{}
		want    error
	}{
		{"nil db", nil, nil, g, nil, nil, ErrBadDatabase},
		{"wrong db", nil, "db", g, nil, nil, ErrBadDatabase},
		{"wrong chain ctx", 42, memdb.New(), g, nil, nil, ErrBadChainContext},
		{"wrong msgChan", nil, memdb.New(), g, nil, make(chan int), ErrBadMsgChan},
		{"bad node config", nil, memdb.New(), g, []byte(`{"mempoolTxs":0}`), nil, ErrBadNodeConfig},
		{"unknown node config", nil, memdb.New(), g, []byte(`{"mempool":1}`), nil, ErrBadNodeConfig},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := New().Initialize(ctx, tc.chain, tc.db, tc.genesis, nil, tc.config, tc.msgChan, nil, nil)
			mustIs(t, err, tc.want)
		})
	}
	if err := New().Initialize(ctx, nil, memdb.New(), []byte(`{"config":{"maxMessages":-1}}`), nil, nil, nil, nil, nil); err == nil {
		t.Fatal("bad genesis accepted")
	}
}

func TestMsgChanAndChainContext(t *testing.T) {
	ch := make(chan smblock.Message, 1)
	chainID := ids.ID{1, 2, 3}
	v := New(WithClock(newTestClock().Now))
	if err := v.Initialize(ctx, chainContext(chainID), memdb.New(), genesisJSON(t, nil, identity(t, 0)), nil, nil, ch, nil, nil); err != nil {
		t.Fatal(err)
	}
	defer v.Shutdown(ctx)
	if v.ChainID() != chainID {
		t.Fatal("chain ID not taken from context")
	}
	tr, err := tx.Sign(identity(t, 0), chainID, 0, &tx.CreateChannel{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.IssueTx(tr.Bytes()); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-ch:
		if m.Type != smblock.PendingTxs {
			t.Fatal(m.Type)
		}
	default:
		t.Fatal("no message on msgChan")
	}
}

func TestShutdown(t *testing.T) {
	e := newEnv(t, nil)
	done := make(chan error)
	go func() { done <- e.vm.Run(ctx) }()
	accepted := e.vm.AcceptedNotify()
	e.issue(e.sign(identity(t, 0), &tx.CreateChannel{Name: "c"}))
	<-accepted
	if err := e.vm.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := e.vm.Shutdown(ctx); err != nil {
		t.Fatal("second shutdown")
	}
	if _, err := e.vm.IssueTx(nil); !errors.Is(err, ErrShutdown) {
		t.Fatal(err)
	}
}

func chainContext(id ids.ID) *consensusctx.Context { return &consensusctx.Context{ChainID: id} }

var _ = crypto.SessionIDLength

// TestFullBlocks: when pending transactions exceed a block, blocks fill up
// to the byte limit and every author's nonces stay in order across blocks.
func TestFullBlocks(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, carol := identity(t, 0), identity(t, 1), identity(t, 2)
	s1 := e.createSession(alice, bob)
	s2 := e.createSession(carol, bob)
	e.acceptAll(s1, bob)
	e.acceptAll(s2, bob)
	big := make([]byte, config.MaxCiphertextSize)
	n := 0
	for i := 0; i < 40; i++ {
		e.issue(e.sign(alice, &tx.SendMessage{Session: s1, Ciphertext: big}))
		e.issue(e.sign(carol, &tx.SendMessage{Session: s2, Ciphertext: []byte("small")}))
		n += 2
	}
	var blocks []*Block
	for total := 0; total < n; {
		b := e.accept()
		if len(b.Bytes()) > config.MaxBlockSize {
			t.Fatal("block too large")
		}
		blocks = append(blocks, b)
		total += len(b.Txs)
	}
	if len(blocks) < 2 {
		t.Fatalf("%d transactions (2.6 MB) fit in one block", n)
	}
	count := func(s ids.ID) int { // pages are cut at MaxPageBytes
		n, after := 0, uint64(0)
		for {
			msgs, err := e.vm.Messages(s, after, 100)
			if err != nil || len(msgs) == 0 {
				return n
			}
			n += len(msgs)
			after = msgs[len(msgs)-1].Seq
		}
	}
	if n := count(s1); n != 40 {
		t.Fatalf("alice's messages: %d", n)
	}
	if n := count(s2); n != 40 {
		t.Fatalf("carol's messages: %d", n)
	}
	if st, _ := e.vm.Status(); st.MempoolTxs != 0 {
		t.Fatal("mempool not drained")
	}
}

func TestWithHandler(t *testing.T) {
	called := false
	v := New(WithHandler(func(api API) (http.Handler, error) {
		called = api != nil
		return http.NotFoundHandler(), nil
	}))
	if err := v.Initialize(ctx, nil, memdb.New(), genesisJSON(t, nil), nil, nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	defer v.Shutdown(ctx)
	hs, err := v.CreateHandlers(ctx)
	if err != nil || !called || hs["/rpc"] == nil {
		t.Fatal("factory not used")
	}
}

// TestExpiredWhilePending: a message admitted before its session expired
// but built after is dropped with its reason, and WaitForEvent stops
// reporting work (no busy loop).
func TestExpiredWhilePending(t *testing.T) {
	e := newEnv(t, map[string]any{"sessionTTL": 60})
	alice, bob := identity(t, 0), identity(t, 1)
	s := e.createSession(alice, bob)
	late := e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("late")})
	e.issue(late)
	e.clock.Advance(2 * time.Minute)
	if _, err := e.vm.BuildBlock(ctx); !errors.Is(err, ErrNoPendingTxs) {
		t.Fatalf("BuildBlock: %v", err)
	}
	st, _ := e.vm.TxStatus(late.ID())
	if st.Status != TxDropped || !strings.Contains(st.Reason, "expired") {
		t.Fatalf("status %+v", st)
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := e.vm.WaitForEvent(tctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForEvent: %v", err)
	}
}

// TestNoSpinWhileParentProcessing: a pending transaction that conflicts
// with a processing block (same author and nonce) is not reported by
// WaitForEvent again until that block is decided, then it is dropped.
func TestNoSpinWhileParentProcessing(t *testing.T) {
	g := genesisJSON(t, nil, identity(t, 0), identity(t, 1))
	clock := newTestClock()
	n1 := newEnvDB(t, memdb.New(), g, clock)
	n2 := newEnvDB(t, memdb.New(), g, clock)
	bob := identity(t, 1)
	mine := n1.sign(bob, &tx.CreateChannel{Name: "on n1"})
	n1.issue(mine)
	n2.issue(n2.sign(bob, &tx.CreateChannel{Name: "on n2"})) // same nonce
	clock.Advance(time.Second)
	other, err := n2.vm.BuildBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	x, err := n1.vm.ParseBlock(ctx, other.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n1.vm.SetPreference(ctx, x.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.vm.BuildBlock(ctx); !errors.Is(err, ErrNoPendingTxs) {
		t.Fatalf("BuildBlock on the conflicting parent: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := n1.vm.WaitForEvent(tctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForEvent while the parent is processing: %v", err)
	}
	if err := x.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := n1.vm.TxStatus(mine.ID()); st.Status != TxDropped || !strings.Contains(st.Reason, "nonce") {
		t.Fatalf("conflicting tx: %+v", st)
	}
}

// TestIssueTxCopiesBuffer: a caller that reuses its buffer right after
// IssueTx (here: overwrites it with another signed transaction, then with
// garbage) changes nothing that was admitted. The accepted block stores
// exactly the bytes whose hash IssueTx reported, and the message is the
// one that was signed.
func TestIssueTxCopiesBuffer(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := identity(t, 0), identity(t, 1)
	s := e.createSession(alice, bob)
	first := e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("the original message")})
	second := e.signNonce(alice, first.Nonce+1, &tx.SendMessage{Session: s, Ciphertext: []byte("a different message!")})
	if first.Size() != second.Size() {
		t.Fatal("the test needs two transactions of one size")
	}
	buf := bytes.Clone(first.Bytes())
	id, err := e.vm.IssueTx(buf)
	if err != nil {
		t.Fatal(err)
	}
	if id != first.ID() {
		t.Fatalf("IssueTx reported %s, want %s", id, first.ID())
	}
	// The caller reuses the buffer: the next transaction, then garbage.
	copy(buf, second.Bytes())
	if id2, err := e.vm.IssueTx(buf); err != nil || id2 != second.ID() {
		t.Fatalf("second IssueTx: %s, %v", id2, err)
	}
	for i := range buf {
		buf[i] = 0xee
	}
	b := e.accept()
	if len(b.Txs) != 2 || b.Txs[0].ID() != first.ID() || b.Txs[1].ID() != second.ID() {
		t.Fatalf("block holds %d txs", len(b.Txs))
	}
	raw, err := state.New(e.db).GetBlock(b.ID())
	if err != nil {
		t.Fatal(err)
	}
	stored, err := block.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []*tx.Tx{first, second} {
		got := stored.Txs[i]
		if sha256.Sum256(got.Bytes()) != [32]byte(want.ID()) || !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("stored tx %d differs from the one IssueTx reported", i)
		}
		if st, _ := e.vm.TxStatus(want.ID()); st.Status != TxAccepted {
			t.Fatalf("tx %d is %s", i, st.Status)
		}
	}
	msgs, err := e.vm.Messages(s, 0, 10)
	if err != nil || len(msgs) != 2 || string(msgs[0].Ciphertext) != "the original message" || string(msgs[1].Ciphertext) != "a different message!" {
		t.Fatalf("messages %v, %v", msgs, err)
	}
}
