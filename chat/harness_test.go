package chat

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/luxfi/session/chat/internal/wire"
	"github.com/luxfi/session/crypto"
)

// testIdentity returns a deterministic identity for index i.
func testIdentity(t testing.TB, i int) *crypto.Identity {
	t.Helper()
	seed := sha256.Sum256([]byte(fmt.Sprintf("chat test identity %d", i)))
	id, err := crypto.IdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var identityCache = map[int]*crypto.Identity{}

func cachedIdentity(t testing.TB, i int) *crypto.Identity {
	if id, ok := identityCache[i]; ok {
		return id
	}
	id := testIdentity(t, i)
	identityCache[i] = id
	return id
}

// posted is an envelope on the simulated chain.
type posted struct {
	env    []byte
	pos    uint64
	sender int
	claims []Claim
}

// directory is the simulated chain's prekey directory: it hands out the
// current signed prekey and claims one unclaimed one-time prekey per bundle.
type directory struct {
	ids      map[crypto.SessionID]*crypto.Identity
	signed   map[crypto.SessionID]SignedPrekey
	oneTime  map[crypto.SessionID][]OneTimePrekey
	noOneOTP bool // hand out no one-time prekeys
	// published keeps every prekey public key ever published, by owner and
	// kind and ID: public information, for the attacker.
	published map[[2]any][]byte
}

func (d *directory) publish(id *crypto.Identity, up *PrekeyUpload) {
	sid, _ := crypto.ParseSessionID(id.SessionID)
	d.ids[sid] = id.PublicIdentity()
	if d.published == nil {
		d.published = map[[2]any][]byte{}
	}
	if up.SignedPrekey != nil {
		d.signed[sid] = *up.SignedPrekey
		d.published[[2]any{sid, "s" + fmt.Sprint(up.SignedPrekey.ID)}] = up.SignedPrekey.PublicKey
	}
	for _, o := range up.OneTimePrekeys {
		d.published[[2]any{sid, "o" + fmt.Sprint(o.ID)}] = o.PublicKey
	}
	d.oneTime[sid] = append(d.oneTime[sid], up.OneTimePrekeys...)
}

func (d *directory) PrekeyBundle(p crypto.SessionID) (*PrekeyBundle, error) {
	id, ok := d.ids[p]
	if !ok {
		return nil, fmt.Errorf("unknown participant")
	}
	b := &PrekeyBundle{Identity: id, SignedPrekey: d.signed[p]}
	if list := d.oneTime[p]; len(list) > 0 && !d.noOneOTP {
		otp := list[0]
		d.oneTime[p] = list[1:]
		b.OneTimePrekey = &otp
	}
	return b, nil
}

// testNet is n participants of one session over a simulated chain.
type testNet struct {
	t       testing.TB
	n       int
	chainID [32]byte
	session *Session
	ids     []*crypto.Identity
	stores  []Store
	devs    []*Device
	convs   []*Conversation
	dir     *directory
	now     time.Time
	chain   []posted
	opts    []Option
}

func newTestNet(t testing.TB, n int, stores []Store, opts ...Option) *testNet {
	t.Helper()
	net := &testNet{
		t: t, n: n, chainID: sha256.Sum256([]byte("test chain")),
		now:  time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		dir:  &directory{ids: map[crypto.SessionID]*crypto.Identity{}, signed: map[crypto.SessionID]SignedPrekey{}, oneTime: map[crypto.SessionID][]OneTimePrekey{}},
		opts: opts,
	}
	for i := range n {
		net.ids = append(net.ids, cachedIdentity(t, i))
		if stores == nil {
			net.stores = append(net.stores, NewMemoryStore())
		} else {
			net.stores = append(net.stores, stores[i])
		}
		d, err := NewDevice(net.ids[i], net.chainID, net.stores[i], opts...)
		if err != nil {
			t.Fatal(err)
		}
		net.devs = append(net.devs, d)
		up, err := d.GeneratePrekeys(net.now, true, 8)
		if err != nil {
			t.Fatal(err)
		}
		net.dir.publish(net.ids[i], up)
	}
	s := &Session{ChainID: net.chainID, ID: sha256.Sum256([]byte("test session"))}
	for _, id := range net.ids {
		s.Participants = append(s.Participants, id.PublicIdentity())
	}
	var bundles []*PrekeyBundle
	for i := 1; i < n; i++ {
		b, err := net.dir.PrekeyBundle(net.sid(i))
		if err != nil {
			t.Fatal(err)
		}
		bundles = append(bundles, b)
	}
	var err error
	if s.Claims, err = ClaimsOf(bundles); err != nil {
		t.Fatal(err)
	}
	net.session = s
	c0, err := net.devs[0].CreateConversation(net.now, s, bundles)
	if err != nil {
		t.Fatal(err)
	}
	net.convs = append(net.convs, c0)
	for i := 1; i < n; i++ {
		c, err := net.devs[i].Conversation(s)
		if err != nil {
			t.Fatal(err)
		}
		net.convs = append(net.convs, c)
	}
	return net
}

func (net *testNet) sid(i int) crypto.SessionID {
	s, err := crypto.ParseSessionID(net.ids[i].SessionID)
	if err != nil {
		net.t.Fatal(err)
	}
	return s
}

// send makes participant i send pt and posts the envelopes on the chain;
// it returns their indexes in net.chain.
func (net *testNet) send(i int, pt string) []int {
	net.t.Helper()
	outs, err := net.convs[i].Send(net.now, []byte(pt), net.dir)
	if err != nil {
		net.t.Fatalf("participant %d send: %v", i, err)
	}
	var idx []int
	for _, o := range outs {
		idx = append(idx, net.post(i, o))
	}
	return idx
}

func (net *testNet) post(i int, o Outgoing) int {
	p := posted{env: o.Envelope, pos: uint64(len(net.chain) + 1), sender: i, claims: o.Claims}
	net.chain = append(net.chain, p)
	return len(net.chain) - 1
}

func (net *testNet) delivery(k int) *Delivery {
	p := net.chain[k]
	return &Delivery{Envelope: p.env, Position: p.pos, Sender: net.sid(p.sender), Claims: p.claims}
}

// open delivers chain entry k to participant j.
func (net *testNet) open(j, k int) (*Message, error) {
	return net.convs[j].Open(net.now, net.delivery(k))
}

// mustOpen delivers entry k to j and checks the plaintext.
func (net *testNet) mustOpen(j, k int, want string) {
	net.t.Helper()
	m, err := net.open(j, k)
	if err != nil {
		net.t.Fatalf("participant %d open entry %d: %v", j, k, err)
	}
	if m.Control {
		if want != "" {
			net.t.Fatalf("participant %d entry %d: setup message, want %q", j, k, want)
		}
		return
	}
	if !bytes.Equal(m.Plaintext, []byte(want)) || m.Sender != net.sid(net.chain[k].sender) {
		net.t.Fatalf("participant %d entry %d: got %q from %v, want %q", j, k, m.Plaintext, m.Sender, want)
	}
}

// reopen rebuilds participant i's device and conversation from its store.
func (net *testNet) reopen(i int) {
	net.t.Helper()
	d, err := NewDevice(net.ids[i], net.chainID, net.stores[i], net.opts...)
	if err != nil {
		net.t.Fatal(err)
	}
	c, err := d.Conversation(net.session)
	if err != nil {
		net.t.Fatal(err)
	}
	net.devs[i], net.convs[i] = d, c
}

// isStep reports whether the stanza of envelope env at position j is a step.
func isStep(t testing.TB, env []byte, j int) bool {
	t.Helper()
	e, err := wire.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	return e.Stanzas[j].Type == wire.Step
}
