package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/database/memdb"
	"github.com/luxfi/database/versiondb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

var updateWrites = flag.Bool("update-writes", false, "rewrite testdata/writes.golden from this code's execution (a consensus change: review the diff)")

const goldenWritesFile = "testdata/writes.golden"

// signDeterministic is tx.Sign with deterministic ML-DSA-65 (vmtest).
func signDeterministic(t testing.TB, id *crypto.Identity, chainID ids.ID, nonce uint64, p tx.Payload) *tx.Tx {
	t.Helper()
	author, err := crypto.ParseSessionID(id.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := vmtest.SignDeterministic(id, &tx.Unsigned{ChainID: chainID, Author: author, Nonce: nonce, Payload: p})
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// acceptRecorded builds a block, executes it once more on its parent's
// state through a recording database (as Verify would, the writes in
// order), checks that those writes give the block's commitment, then
// verifies and accepts it and hands it to onBlock.
func (e *env) acceptRecorded() *Block {
	e.t.Helper()
	ctx := context.Background()
	sb, err := e.vm.BuildBlock(ctx)
	if err != nil {
		e.t.Fatalf("BuildBlock: %v", err)
	}
	b := sb.(*Block)
	parent := e.vm.chain.lastAccepted
	overlay := versiondb.New(e.vm.chain.cache)
	rec := &recordingDB{Database: overlay}
	st := state.New(rec)
	st.Defer()
	if err := executeBlock(st, e.vm.chain.execContext(b.Height(), b.Block.Timestamp, parent.ID()), b.Txs); err != nil {
		e.t.Fatal(err)
	}
	overlay.Abort()
	if got := commitmentByDefinition(parent.Block.StateCommitment, b.Height(), rec.ops); got != b.Block.StateCommitment {
		e.t.Fatalf("block %d: the recorded writes give commitment %x, the block says %x", b.Height(), got, b.Block.StateCommitment)
	}
	if err := b.Verify(ctx); err != nil {
		e.t.Fatalf("Verify: %v", err)
	}
	if err := b.Accept(ctx); err != nil {
		e.t.Fatalf("Accept: %v", err)
	}
	e.onBlock(b, rec.ops)
	return b
}

// writesListing prints writes one a line: the namespace (the key's first
// byte, a letter), the rest of the key in hex, and the value (in hex up to
// 48 bytes, else its length and the start of its SHA-256).
func writesListing(w *strings.Builder, ops []recordedOp) {
	for _, op := range ops {
		verb := "put"
		if op.del {
			verb = "del"
		}
		fmt.Fprintf(w, "  %s %c %s", verb, op.key[0], hex.EncodeToString(op.key[1:]))
		if !op.del {
			if len(op.value) <= 48 {
				fmt.Fprintf(w, " = %s", hex.EncodeToString(op.value))
			} else {
				h := sha256.Sum256(op.value)
				fmt.Fprintf(w, " = [%d bytes, sha256 %s…]", len(op.value), hex.EncodeToString(h[:8]))
			}
		}
		w.WriteByte('\n')
	}
}

// TestGoldenWrites pins, for every transaction type, the writes its
// execution makes, in order: the state transition that every block's
// commitment covers (LLM.md, "State commitment"). A change to `state` or
// `execute` that changes a single key, value or the order of two writes
// changes the commitment of every block that runs it, so that nodes on
// the old code refuse the blocks of nodes on the new (a chain split). Such
// a change shows here as a diff of testdata/writes.golden, to be made on
// purpose (go test ./vm -run TestGoldenWrites -update-writes) and
// scheduled as a rule change, never by accident.
//
// The scenario runs each transaction type at least once, on a chain with
// retention short enough that its last block prunes expired messages and
// sessions; transactions are signed deterministically so their IDs (which
// the writes contain) are the same every run.
func TestGoldenWrites(t *testing.T) {
	ids8 := vmtest.Identities(0, 8)
	alice, bob, carol, dave, eve := ids8[0], ids8[1], ids8[2], ids8[3], ids8[5]
	g := genesisJSON(t, map[string]any{"sessionTTL": 3600, "retentionDays": 1}, alice, bob, carol, dave)
	db := memdb.New()
	rec := &recordingDB{Database: memdb.New()}
	e := newEnvDB(t, db, g, nil)
	e.deterministic = true

	var out strings.Builder
	fmt.Fprintf(&out, "# The writes of each block's execution, in order (TestGoldenWrites).\n")
	fmt.Fprintf(&out, "# chain %s\n", e.vm.ChainID())
	if err := e.vm.genesis.Apply(state.New(rec)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&out, "genesis: %d writes, commitment %x\n", len(rec.ops), e.vm.chain.lastAccepted.Block.StateCommitment)
	writesListing(&out, rec.ops)

	seen := map[tx.Type]bool{}
	e.onBlock = func(b *Block, ops []recordedOp) {
		var types []string
		for _, x := range b.Txs {
			types = append(types, x.Type().String())
			seen[x.Type()] = true
		}
		fmt.Fprintf(&out, "block %d (%s): %d writes, commitment %x\n", b.Height(), strings.Join(types, ", "), len(ops), b.Block.StateCommitment)
		writesListing(&out, ops)
	}

	// Identities and contacts.
	reg, _ := e.registration(eve, 0)
	e.do(eve, reg)
	e.do(bob, &tx.SetContact{Peer: sid(t, alice), Status: tx.ContactTrusted})
	e.do(dave, &tx.SetRequestPolicy{Policy: tx.RequestsFromContacts})
	e.do(bob, e.signedPrekey(1))
	e.do(bob, oneTimes(1, 2))

	// A session: bob trusts alice (taking part at once), carol is asked;
	// alice's handshake with bob claims his prekeys.
	var ps []crypto.SessionID
	for _, p := range []*crypto.Identity{bob, carol} {
		ps = append(ps, sid(t, p))
	}
	created := e.do(alice, &tx.CreateSession{Participants: ps, Claims: []tx.Claim{cl(sid(t, bob), 1, 2)}, Metadata: []byte("meta")})
	session := tx.SessionIDFor(e.vm.ChainID(), created.Author, created.Nonce)
	e.do(alice, &tx.SendMessage{Session: session, Ciphertext: []byte("hello both")})
	e.do(carol, &tx.AcceptSession{Session: session, Decision: tx.DecisionAccept})
	e.do(carol, &tx.SendMessage{Session: session, Ciphertext: []byte("hello from carol")})
	e.do(alice, &tx.CloseSession{Session: session})

	// A channel: joined, posted to, moderated, left.
	channel := e.channelOf(alice, tx.PolicyOpen)
	e.issue(e.sign(bob, &tx.JoinChannel{Channel: channel}))
	e.issue(e.sign(carol, &tx.JoinChannel{Channel: channel}))
	e.accept()
	e.issue(e.sign(bob, &tx.PostChannel{Channel: channel, Ciphertext: []byte("post 1")}))
	e.issue(e.sign(carol, &tx.PostChannel{Channel: channel, Ciphertext: []byte("post 2")}))
	e.accept()
	e.do(alice, &tx.SetChannelPolicy{Channel: channel, JoinPolicy: tx.PolicyInviteOnly, SlowModeSeconds: 10})
	e.do(alice, &tx.ModerateChannel{Channel: channel, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, carol)}})
	e.do(alice, &tx.DeletePosts{Channel: channel, Seqs: []uint64{1}})
	e.do(bob, &tx.LeaveChannel{Channel: channel})

	// Two days on: the block of the next transaction prunes what expired.
	e.clock.Advance(48 * time.Hour)
	e.do(dave, &tx.SetContact{Peer: sid(t, eve), Status: tx.ContactBlocked})

	for _, ty := range tx.Types() {
		if !seen[ty] {
			t.Errorf("the scenario runs no %s transaction: add one (every type's writes are pinned)", ty)
		}
	}
	if !strings.Contains(out.String(), "del r ") {
		t.Error("the last block pruned nothing: the scenario no longer covers retention")
	}

	got := []byte(out.String())
	if *updateWrites {
		if err := os.MkdirAll(filepath.Dir(goldenWritesFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenWritesFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", goldenWritesFile, len(got))
		return
	}
	want, err := os.ReadFile(goldenWritesFile)
	if err != nil {
		t.Fatalf("%v (create it with -update-writes)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the writes of execution differ from %s: a consensus change (every block's commitment changes with them).\n"+
			"If it is meant, schedule it as a rule change and run go test ./vm -run TestGoldenWrites -update-writes; review the diff.\n%s",
			goldenWritesFile, firstDiff(string(want), string(got)))
	}
}

// firstDiff shows the first lines where a and b differ (a block's
// heading differs with its commitment; the writes after it say why), with
// the block heading each belongs to.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	heading, shown := "", 0
	for i := 0; i < max(len(wl), len(gl)) && shown < 4; i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			fmt.Fprintf(&b, "line %d (in %q):\n  golden: %s\n  now:    %s\n", i+1, heading, w, g)
			shown++
		}
		if !strings.HasPrefix(w, " ") {
			heading = w
		}
	}
	if shown == 0 {
		return "(no line differs: only the line endings)"
	}
	return b.String()
}
