package chattest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/crypto"
)

var update = flag.Bool("update", false, "rewrite the known-answer vectors in testdata")

// katFile is conversation_kat.json: a script and everything it produced.
type katFile struct {
	Description string     `json:"description"`
	ChainID     string     `json:"chainId"`
	SessionID   string     `json:"sessionId"`
	Parties     []katParty `json:"parties"`
	Steps       []katStep  `json:"steps"`
}

type katParty struct {
	Name      string `json:"name"`
	Seed      string `json:"identitySeed"`
	SessionID string `json:"sessionId"`
}

type katStep struct {
	Op   string `json:"op"` // prekeys | create | join | send | open | reset | dead | heal
	Who  string `json:"who"`
	Time int64  `json:"time"` // Unix ms

	// reset: the participant the next send re-initiates with
	Peer string `json:"peer,omitempty"`

	// prekeys
	Signed  bool       `json:"signed,omitempty"`
	OneTime int        `json:"oneTime,omitempty"`
	Upload  *katUpload `json:"upload,omitempty"`

	// create: the claims of CreateSession for the bundles the creator used
	Claims []katClaim `json:"claims,omitempty"`

	// send, dead (the envelopes sent again), heal
	Plaintext *string       `json:"plaintext,omitempty"`
	Envelopes []katEnvelope `json:"envelopes,omitempty"`

	// open (the envelope at position), dead (the envelope whose transaction died)
	Position uint64 `json:"position,omitempty"`
	Control  bool   `json:"control,omitempty"`
	Error    string `json:"error,omitempty"`
}

type katUpload struct {
	SignedPrekey   *katPrekey  `json:"signedPrekey,omitempty"`
	OneTimePrekeys []katPrekey `json:"oneTimePrekeys,omitempty"`
}

type katPrekey struct {
	ID        uint32 `json:"id"`
	ExpiresAt int64  `json:"expiresAt,omitempty"`
	PublicKey string `json:"publicKey"`
}

type katEnvelope struct {
	Position uint64     `json:"position"`
	Control  bool       `json:"control,omitempty"`
	Claims   []katClaim `json:"claims,omitempty"`
	Hex      string     `json:"hex"`
}

type katClaim struct {
	Participant     string `json:"participant"`
	SignedPrekeyID  uint32 `json:"signedPrekeyId"`
	OneTimePrekeyID uint32 `json:"oneTimePrekeyId"`
}

// errorNames are the error classes of the vectors.
var errorNames = []struct {
	name string
	err  error
}{
	{"malformed", chat.ErrMalformed},
	{"decryption-failed", chat.ErrDecryptionFailed},
	{"invalid-signature", chat.ErrInvalidSignature},
	{"wrong-sender", chat.ErrWrongSender},
	{"replay", chat.ErrReplay},
	{"duplicate", chat.ErrDuplicate},
	{"chain-not-started", chat.ErrChainNotStarted},
	{"unknown-tree", chat.ErrUnknownTree},
	{"unknown-target", chat.ErrUnknownTarget},
	{"unknown-prekey", chat.ErrUnknownPrekey},
	{"unclaimed-prekey", chat.ErrUnclaimedPrekey},
	{"not-addressed", chat.ErrNotAddressed},
	{"not-from-this-device", chat.ErrNotFromThisDevice},
	{"too-many-skipped", chat.ErrTooManySkipped},
	{"too-many-handshakes", chat.ErrTooManyHandshakes},
}

func errorName(err error) string {
	for _, e := range errorNames {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	return "other: " + err.Error()
}

// runner executes a script against fresh devices on memory stores, with a
// directory that hands out each participant's newest signed prekey and its
// lowest unclaimed one-time prekey.
type runner struct {
	t       *testing.T
	chainID [32]byte
	session *chat.Session
	parties []*party
	byName  map[string]*party
	chain   []katEnvelope
	senders []int
	ids     []chat.EnvelopeID
}

type party struct {
	name    string
	id      *crypto.Identity
	sid     crypto.SessionID
	dev     *chat.Device
	conv    *chat.Conversation
	signed  *chat.SignedPrekey
	oneTime []chat.OneTimePrekey
}

func newRunner(t *testing.T, f *katFile) *runner {
	r := &runner{t: t, byName: map[string]*party{}}
	copy(r.chainID[:], mustHex(t, f.ChainID))
	r.session = &chat.Session{ChainID: r.chainID}
	copy(r.session.ID[:], mustHex(t, f.SessionID))
	for _, p := range f.Parties {
		id, err := crypto.IdentityFromSeed([32]byte(mustHex(t, p.Seed)))
		if err != nil {
			t.Fatal(err)
		}
		if id.SessionID != p.SessionID {
			t.Fatalf("%s: Session ID %s, vector says %s", p.Name, id.SessionID, p.SessionID)
		}
		sid, _ := crypto.ParseSessionID(id.SessionID)
		dev, err := NewDevice(Stream(p.Name), id, r.chainID, chat.NewMemoryStore())
		if err != nil {
			t.Fatal(err)
		}
		pp := &party{name: p.Name, id: id, sid: sid, dev: dev}
		r.parties = append(r.parties, pp)
		r.byName[p.Name] = pp
		r.session.Participants = append(r.session.Participants, id.PublicIdentity())
	}
	return r
}

func (r *runner) party(name string) *party {
	p, ok := r.byName[name]
	if !ok {
		r.t.Fatalf("unknown party %q", name)
	}
	return p
}

// PrekeyBundle implements chat.Directory.
func (r *runner) PrekeyBundle(sid crypto.SessionID) (*chat.PrekeyBundle, error) {
	for _, p := range r.parties {
		if p.sid == sid {
			return r.bundle(p), nil
		}
	}
	return nil, fmt.Errorf("unknown participant")
}

func (r *runner) bundle(p *party) *chat.PrekeyBundle {
	b := &chat.PrekeyBundle{Identity: p.id.PublicIdentity(), SignedPrekey: *p.signed}
	if len(p.oneTime) > 0 {
		otp := p.oneTime[0]
		p.oneTime = p.oneTime[1:]
		b.OneTimePrekey = &otp
	}
	return b
}

// step runs one step; with record, it fills the step's outputs, otherwise
// it checks them.
func (r *runner) step(i int, s *katStep, record bool) {
	t := r.t
	p := r.party(s.Who)
	now := time.UnixMilli(s.Time)
	where := fmt.Sprintf("step %d (%s %s)", i, s.Who, s.Op)
	switch s.Op {
	case "prekeys":
		up, err := p.dev.GeneratePrekeys(now, s.Signed, s.OneTime)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		got := &katUpload{}
		if up.SignedPrekey != nil {
			p.signed = up.SignedPrekey
			got.SignedPrekey = &katPrekey{ID: up.SignedPrekey.ID, ExpiresAt: up.SignedPrekey.ExpiresAt.UnixMilli(), PublicKey: hex.EncodeToString(up.SignedPrekey.PublicKey)}
		}
		for _, o := range up.OneTimePrekeys {
			p.oneTime = append(p.oneTime, o)
			got.OneTimePrekeys = append(got.OneTimePrekeys, katPrekey{ID: o.ID, PublicKey: hex.EncodeToString(o.PublicKey)})
		}
		r.compare(where, record, &s.Upload, got)
	case "create":
		var bundles []*chat.PrekeyBundle
		for _, q := range r.parties[1:] {
			bundles = append(bundles, r.bundle(q))
		}
		claims, err := chat.ClaimsOf(bundles)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		r.session.Claims = claims
		r.compare(where, record, &s.Claims, katClaims(claims))
		c, err := p.dev.CreateConversation(now, r.session, bundles)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		p.conv = c
	case "join":
		c, err := p.dev.Conversation(r.session)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		p.conv = c
	case "send", "dead", "heal":
		var outs []chat.Outgoing
		var err error
		switch s.Op {
		case "send":
			outs, err = p.conv.Send(now, []byte(*s.Plaintext), r)
		case "dead":
			outs, err = p.conv.Dead(now, r.ids[s.Position-1], r)
		default:
			outs, err = p.conv.Heal(now)
		}
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		var got []katEnvelope
		for _, o := range outs {
			e := katEnvelope{Position: uint64(len(r.chain) + 1), Control: o.Control, Claims: katClaims(o.Claims), Hex: hex.EncodeToString(o.Envelope)}
			got = append(got, e)
			r.chain = append(r.chain, e)
			r.senders = append(r.senders, slices.Index(r.parties, p))
			r.ids = append(r.ids, o.ID)
		}
		r.compare(where, record, &s.Envelopes, got)
	case "reset":
		if err := p.conv.Reset(r.party(s.Peer).sid); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
	case "open":
		m, err := p.conv.Open(now, r.delivery(s.Position))
		got := katStep{}
		if err != nil {
			got.Error = errorName(err)
		} else if m.Control {
			got.Control = true
		} else {
			pt := string(m.Plaintext)
			got.Plaintext = &pt
		}
		if record {
			s.Error, s.Control, s.Plaintext = got.Error, got.Control, got.Plaintext
		} else if got.Error != s.Error || got.Control != s.Control || !equalPtr(got.Plaintext, s.Plaintext) {
			t.Fatalf("%s at position %d: got error %q control %v plaintext %v, vector says %q %v %v",
				where, s.Position, got.Error, got.Control, str(got.Plaintext), s.Error, s.Control, str(s.Plaintext))
		}
	default:
		t.Fatalf("%s: unknown op", where)
	}
}

func katClaims(cs []chat.Claim) []katClaim {
	var out []katClaim
	for _, c := range cs {
		out = append(out, katClaim{Participant: c.Participant.String(), SignedPrekeyID: c.SignedPrekeyID, OneTimePrekeyID: c.OneTimePrekeyID})
	}
	return out
}

func (r *runner) delivery(position uint64) *chat.Delivery {
	e := r.chain[position-1]
	d := &chat.Delivery{Envelope: mustHex(r.t, e.Hex), Position: position, Sender: r.parties[r.senders[position-1]].sid}
	for _, c := range e.Claims {
		sid, err := crypto.ParseSessionID(c.Participant)
		if err != nil {
			r.t.Fatal(err)
		}
		d.Claims = append(d.Claims, chat.Claim{Participant: sid, SignedPrekeyID: c.SignedPrekeyID, OneTimePrekeyID: c.OneTimePrekeyID})
	}
	return d
}

// compare records got into *field, or checks it against *field.
func (r *runner) compare(where string, record bool, field any, got any) {
	switch f := field.(type) {
	case **katUpload:
		if record {
			*f = got.(*katUpload)
			return
		}
		a, _ := json.Marshal(*f)
		b, _ := json.Marshal(got)
		if !bytes.Equal(a, b) {
			r.t.Fatalf("%s: prekeys differ from the vector", where)
		}
	case *[]katClaim:
		if record {
			*f = got.([]katClaim)
			return
		}
		if !slices.Equal(*f, got.([]katClaim)) {
			r.t.Fatalf("%s: claims %v, vector says %v", where, got, *f)
		}
	case *[]katEnvelope:
		if record {
			*f = got.([]katEnvelope)
			return
		}
		a, _ := json.Marshal(*f)
		b, _ := json.Marshal(got)
		if !bytes.Equal(a, b) {
			r.t.Fatalf("%s: envelopes differ from the vector", where)
		}
	}
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q", *p)
}

func mustHex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr(s string) *string { return &s }

// script is the scenario of conversation_kat.json (docs/protocol.md,
// section 15): three parties; the creator's handshakes with claimed one-time
// prekeys; a handshake without one (carol has none left); simultaneous
// initiation (bob and carol each start their pair); steps on every change of
// speaker; out-of-order delivery (skipped keys); a replay; the 24-hour
// bound; an own message confirmed by reading it back; a reset whose
// transaction dies, is sent again and lands after all (a duplicate); a
// ratchet message.
func script() *katFile {
	seed := func(name string) string {
		s := sha256.Sum256([]byte("luxfi/session/v1/chat/kat/identity/" + name))
		return hex.EncodeToString(s[:])
	}
	chainID := sha256.Sum256([]byte("luxfi/session/v1/chat/kat/chain"))
	sessionID := sha256.Sum256([]byte("luxfi/session/v1/chat/kat/session"))
	f := &katFile{
		Description: "docs/protocol.md section 15. Parties in participant order (the first is the creator); each party's randomness is SHAKE256(\"luxfi/session/v1/chat/kat/\" || name), signatures deterministic. The directory hands out a party's newest signed prekey and its lowest-ID one-time prekey not yet handed out. Envelopes get positions in the order they are sent (a dead transaction's envelope keeps its position, for the steps that deliver it after all); an open delivers the envelope at that position with its sender and claims. Ops: prekeys (generate), create (CreateConversation with the claims), join, send, open, reset (Reset of peer), dead (Dead of the envelope at position: its envelopes are sent again), heal (a ratchet message).",
		ChainID:     hex.EncodeToString(chainID[:]),
		SessionID:   hex.EncodeToString(sessionID[:]),
	}
	for _, n := range []string{"alice", "bob", "carol"} {
		f.Parties = append(f.Parties, katParty{Name: n, Seed: seed(n)})
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	at := func(s int64) int64 { return t0 + s*1000 }
	add := func(s katStep) { f.Steps = append(f.Steps, s) }
	add(katStep{Op: "prekeys", Who: "alice", Time: at(0), Signed: true, OneTime: 2})
	add(katStep{Op: "prekeys", Who: "bob", Time: at(0), Signed: true, OneTime: 2})
	add(katStep{Op: "prekeys", Who: "carol", Time: at(0), Signed: true, OneTime: 1})
	add(katStep{Op: "create", Who: "alice", Time: at(1)})
	add(katStep{Op: "join", Who: "bob", Time: at(1)})
	add(katStep{Op: "join", Who: "carol", Time: at(1)})
	add(katStep{Op: "send", Who: "alice", Time: at(2), Plaintext: ptr("hello, this is alice")}) // 1
	for _, w := range []string{"bob", "carol", "alice"} {
		add(katStep{Op: "open", Who: w, Time: at(3), Position: 1})
	}
	add(katStep{Op: "open", Who: "bob", Time: at(3), Position: 1})                          // replay
	add(katStep{Op: "send", Who: "bob", Time: at(4), Plaintext: ptr("hi alice and carol")}) // 2
	add(katStep{Op: "send", Who: "carol", Time: at(5), Plaintext: ptr("carol here")})       // 3
	for _, o := range []struct {
		who string
		pos uint64
	}{{"alice", 2}, {"alice", 3}, {"carol", 3}, {"carol", 2}, {"bob", 2}, {"bob", 3}} {
		add(katStep{Op: "open", Who: o.who, Time: at(6), Position: o.pos})
	}
	add(katStep{Op: "send", Who: "alice", Time: at(7), Plaintext: ptr("second from alice")}) // 4
	add(katStep{Op: "send", Who: "bob", Time: at(8), Plaintext: ptr("b1")})                  // 5
	add(katStep{Op: "send", Who: "bob", Time: at(9), Plaintext: ptr("b2")})                  // 6
	add(katStep{Op: "send", Who: "bob", Time: at(10), Plaintext: ptr("b3")})                 // 7
	for _, o := range []struct {
		who string
		pos uint64
	}{{"bob", 4}, {"carol", 4}, {"carol", 7}, {"carol", 5}, {"carol", 6}, {"alice", 5}, {"alice", 6}, {"alice", 7}, {"alice", 4}, {"bob", 5}, {"bob", 6}, {"bob", 7}} {
		add(katStep{Op: "open", Who: o.who, Time: at(11), Position: o.pos})
	}
	day := int64(24 * 3600)
	add(katStep{Op: "send", Who: "alice", Time: at(12 + day), Plaintext: ptr("a day later")}) // 8
	add(katStep{Op: "send", Who: "carol", Time: at(13 + day), Plaintext: ptr("bye")})         // 9
	for _, o := range []struct {
		who string
		pos uint64
	}{{"bob", 8}, {"carol", 8}, {"alice", 8}, {"alice", 9}, {"bob", 9}, {"carol", 9}} {
		add(katStep{Op: "open", Who: o.who, Time: at(14 + day), Position: o.pos})
	}
	// Alice resets her pair with carol: the handshake (generation 2, no
	// one-time prekey left) rides in a message whose transaction dies; it
	// is sent again (generation 3, a new claim); the dead one lands after
	// all (a node lied): recipients refuse its copy as a duplicate, and the
	// pair converges on the generation-3 tree.
	add(katStep{Op: "reset", Who: "alice", Time: at(15 + day), Peer: "carol"})
	add(katStep{Op: "send", Who: "alice", Time: at(16 + day), Plaintext: ptr("after the reset")}) // 10 (dies)
	add(katStep{Op: "dead", Who: "alice", Time: at(17 + day), Position: 10})                      // 11
	for _, o := range []struct {
		who string
		pos uint64
	}{{"carol", 11}, {"bob", 11}, {"carol", 10}, {"bob", 10}, {"alice", 10}, {"alice", 11}} {
		add(katStep{Op: "open", Who: o.who, Time: at(18 + day), Position: o.pos})
	}
	add(katStep{Op: "send", Who: "carol", Time: at(19 + day), Plaintext: ptr("carol, in the new tree")}) // 12
	// Bob has only read since his last message: a ratchet message.
	add(katStep{Op: "heal", Who: "bob", Time: at(20 + day)}) // 13
	for _, o := range []struct {
		who string
		pos uint64
	}{{"alice", 12}, {"bob", 12}, {"carol", 12}, {"alice", 13}, {"carol", 13}, {"bob", 13}} {
		add(katStep{Op: "open", Who: o.who, Time: at(21 + day), Position: o.pos})
	}
	add(katStep{Op: "send", Who: "alice", Time: at(22 + day), Plaintext: ptr("to everyone, bob healed")}) // 14
	for _, w := range []string{"bob", "carol", "alice"} {
		add(katStep{Op: "open", Who: w, Time: at(23 + day), Position: 14})
	}
	return f
}

const katPath = "testdata/conversation_kat.json"

func TestConversationVectors(t *testing.T) {
	var f *katFile
	if *update {
		f = script()
		r := newRunner(t, withSessionIDs(t, f))
		for i := range f.Steps {
			r.step(i, &f.Steps[i], true)
		}
		writeJSON(t, katPath, f)
		return
	}
	f = &katFile{}
	readJSON(t, katPath, f)
	r := newRunner(t, f)
	opens := 0
	for i := range f.Steps {
		r.step(i, &f.Steps[i], false)
		if f.Steps[i].Op == "open" && f.Steps[i].Error == "" {
			opens++
		}
	}
	// The vector must exercise what it claims to.
	if opens < 30 || len(r.chain) != 14 {
		t.Fatalf("%d successful opens, %d envelopes", opens, len(r.chain))
	}
}

func withSessionIDs(t *testing.T, f *katFile) *katFile {
	for i, p := range f.Parties {
		id, err := crypto.IdentityFromSeed([32]byte(mustHex(t, p.Seed)))
		if err != nil {
			t.Fatal(err)
		}
		f.Parties[i].SessionID = id.SessionID
	}
	return f
}

func writeJSON(t *testing.T, path string, v any) {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Vectors -update ./chat/chattest/ to make it)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
