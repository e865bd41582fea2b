package chat

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/luxfi/session/chat/internal/ratchet"
	"github.com/luxfi/session/chat/internal/wire"
	"github.com/luxfi/session/internal/testenv"
)

// soak scales the randomized and crash tests: 0 normally; with
// SESSION_LONG_TESTS=1 (the long step of .ci/run, under -race) a factor
// that keeps them to minutes; CHAT_SOAK=N for a factor of N (CHAT_SOAK=1:
// 20), for soaking by hand.
func soak() int {
	if v := os.Getenv("CHAT_SOAK"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 1 {
			return n
		}
		return 20
	}
	if testenv.LongEnabled() {
		if raceEnabled {
			return 2
		}
		return 10
	}
	return 0
}

// model is what the protocol must do, independent of how: every envelope
// sent is opened by each recipient exactly once, to the plaintext and
// sender it was sent with, as soon as the message that started its chain
// (and, for a step, the key it was started against) is known to the
// recipient; never twice; never to anything else.
type model struct {
	net     *testNet
	rng     *rand.Rand
	entries []*entry
	// per recipient: entries pending delivery (chain order), opened ones,
	// dropped ones, and the chains it knows.
	pending [][]int
	opened  []map[int]bool
	dropped []map[int]bool
	// chains each participant can open messages of (received starts) and
	// own chains others may step against (its own, and trees it responded
	// to).
	received []map[ratchet.ID]bool
	own      []map[ratchet.ID]bool
	// keys used, to check no message key serves two envelopes.
	used                             map[[3]any]int
	opens, refusals, replays, deaths int
	evictions                        int
	// deadRate: one send in deadRate has its first transaction refused (0:
	// none).
	deadRate int
	// maxAdvance bounds one step of the clock.
	maxAdvance time.Duration
}

type entry struct {
	k       int
	sender  int
	text    string
	setup   bool
	stanzas []stanzaInfo // by recipient index (the sender's entry unused)
}

type stanzaInfo struct {
	typ    wire.StanzaType
	chain  ratchet.ID // the chain the message is in
	target ratchet.ID // step: the recipient's chain it was started against
	tree   ratchet.ID // handshake: the tree
}

func newModel(t *testing.T, net *testNet, seed uint64) *model {
	m := &model{net: net, rng: rand.New(rand.NewPCG(seed, 0x5eed)), used: map[[3]any]int{}}
	for range net.n {
		m.pending = append(m.pending, nil)
		m.opened = append(m.opened, map[int]bool{})
		m.dropped = append(m.dropped, map[int]bool{})
		m.received = append(m.received, map[ratchet.ID]bool{})
		m.own = append(m.own, map[ratchet.ID]bool{})
	}
	return m
}

// record parses a posted envelope into the model.
func (m *model) record(k int, text string) {
	t := m.net.t
	p := m.net.chain[k]
	e, err := wire.Parse(p.env)
	if err != nil {
		t.Fatal(err)
	}
	en := &entry{k: k, sender: p.sender, text: text, stanzas: make([]stanzaInfo, m.net.n)}
	c := m.net.convs[p.sender]
	for j := range e.Stanzas {
		r := j
		if r >= p.sender {
			r++
		}
		st := &e.Stanzas[j]
		si := stanzaInfo{typ: st.Type}
		switch st.Type {
		case wire.None:
			en.setup = true
		case wire.Continue:
			si.chain = st.Chain
		case wire.Step:
			si.chain, si.target = ratchet.ChainID(st.Chain, st.K, st.CT), st.Chain
		case wire.Handshake:
			pubs := m.net.dir.published
			h := ratchet.Handshake{
				Initiator: c.parts[p.sender].id[:], Responder: c.parts[r].id[:],
				SPKID: st.SPKID, OPKID: st.OPKID, Gen: st.Gen,
				SPK: pubs[[2]any{m.net.sid(r), "s" + fmt.Sprint(st.SPKID)}], C1: st.C1, C2: st.C2, C3: st.C3,
			}
			if st.OPKID != 0 {
				h.OPK = pubs[[2]any{m.net.sid(r), "o" + fmt.Sprint(st.OPKID)}]
			}
			si.tree = h.TreeID(c.env.SC)
			si.chain = ratchet.ChainID(si.tree, 1, nil)
		}
		if st.Type == wire.Step || st.Type == wire.Handshake {
			m.own[p.sender][si.chain] = true
		}
		if st.Type != wire.None {
			n := uint32(0)
			if st.Type == wire.Continue {
				n = st.N
			}
			key := [3]any{r, si.chain, n}
			if prev, ok := m.used[key]; ok {
				t.Fatalf("entries %d and %d use the same message key (chain %x, n %d)", prev, k, si.chain[:4], n)
			}
			m.used[key] = k
		}
		en.stanzas[r] = si
	}
	if kind := e.Stanzas[0].Type; kind == wire.None || en.setup {
		en.setup = true
	}
	m.entries = append(m.entries, en)
	for j := range m.net.n {
		m.pending[j] = append(m.pending[j], k)
	}
}

// send has participant i send a message, or returns false if it cannot now
// (its outbox is full). Now and then the chain refuses the first
// transaction (a claim taken first, say): the sender reports it dead and
// posts what it sends again (docs/protocol.md, section 10.4). The dead
// envelopes are recorded (so that no key they used serves another
// envelope) but never delivered.
func (m *model) send(i int) {
	text := fmt.Sprintf("entry %d from %d", len(m.net.chain), i)
	conv := m.net.convs[i]
	outs, err := conv.Send(m.net.now, []byte(text), m.net.dir)
	if errors.Is(err, ErrOutboxFull) {
		return
	}
	if err != nil {
		m.net.t.Fatalf("participant %d send: %v", i, err)
	}
	if m.deadRate > 0 && m.rng.IntN(m.deadRate) == 0 {
		for _, o := range outs {
			k := m.net.post(i, o)
			m.record(k, "")
			for j := range m.net.n {
				m.pending[j] = slices.DeleteFunc(m.pending[j], func(x int) bool { return x == k })
				m.dropped[j][k] = true
			}
		}
		again, err := conv.Dead(m.net.now, outs[0].ID, m.net.dir)
		if err != nil {
			m.net.t.Fatalf("participant %d: a dead transaction: %v", i, err)
		}
		for _, o := range outs[1:] { // superseded: the new envelopes take their nonces
			if more, err := conv.Dead(m.net.now, o.ID, m.net.dir); err != nil || len(more) != 0 {
				m.net.t.Fatalf("participant %d: a superseded envelope died: %d sent, %v", i, len(more), err)
			}
		}
		m.deaths++
		outs = again
	}
	for n, o := range outs {
		k := m.net.post(i, o)
		m.record(k, map[bool]string{true: text}[n == len(outs)-1])
		if n != len(outs)-1 {
			m.entries[k].setup = true
		}
	}
}

// openable is the model: can j open entry k now?
func (m *model) openable(j, k int) bool {
	en := m.entries[k]
	if en.sender == j {
		return true
	}
	si := en.stanzas[j]
	switch si.typ {
	case wire.Continue:
		return m.received[j][si.chain]
	case wire.Step:
		return m.own[j][si.target]
	case wire.Handshake:
		return true
	}
	return false
}

// doomed reports whether entry k can never open for j: the message that
// starts its chain (or the handshake that made the key it was started
// against) was dropped for j, or is doomed itself.
func (m *model) doomed(j, k int) bool {
	en := m.entries[k]
	if en.sender == j {
		return false
	}
	si := en.stanzas[j]
	var dep ratchet.ID
	switch si.typ {
	case wire.Continue:
		dep = si.chain
	case wire.Step:
		if m.own[j][si.target] || m.createdBy(j, si.target) < 0 {
			return false
		}
		dep = si.target
	default:
		return false
	}
	d := m.createdBy(j, dep)
	if d < 0 {
		return false
	}
	return m.dropped[j][d] || m.doomed(j, d)
}

// createdBy is the entry whose stanza for j started chain id (or made tree
// id), or -1.
func (m *model) createdBy(j int, id ratchet.ID) int {
	for k, en := range m.entries {
		if en.sender != j && (en.stanzas[j].chain == id && (en.stanzas[j].typ == wire.Step || en.stanzas[j].typ == wire.Handshake) || en.stanzas[j].tree == id) {
			return k
		}
	}
	return -1
}

// evicted reports whether j's own chain that a step stanza targets was
// pushed out by MaxOwnChains: j's tree holding it has MaxOwnChains own
// chains, all newer than the target, and none superseded (the sender had
// answered none of them).
func (m *model) evicted(j int, si stanzaInfo) bool {
	st := m.net.convs[j].rec.state
	for _, p := range st.Pairs {
		if p == nil {
			continue
		}
		for _, tr := range p.Trees {
			if len(tr.Own) < MaxOwnChains {
				continue
			}
			all := true
			for _, c := range tr.Own {
				all = all && c.Superseded == 0 && c.ID != si.target
			}
			if all {
				return true
			}
		}
	}
	return false
}

// deliver delivers entry k to j and checks the outcome against the model.
func (m *model) deliver(j, k int) bool {
	t := m.net.t
	en := m.entries[k]
	msg, err := m.net.open(j, k)
	si := en.stanzas[j]
	switch {
	case en.sender != j && si.typ == wire.None:
		if !errors.Is(err, ErrNotAddressed) {
			t.Fatalf("participant %d, entry %d (not addressed): %v", j, k, err)
		}
		m.opened[j][k] = true
		return true
	case m.opened[j][k]:
		// A replay is refused: as one while its key's chain or tree is on
		// record, else as a message of a chain this participant no longer
		// has (docs/protocol.md, section 14.5).
		if !errors.Is(err, ErrReplay) && !errors.Is(err, ErrUnknownTarget) && !errors.Is(err, ErrChainNotStarted) {
			t.Fatalf("participant %d, entry %d again: %v, want ErrReplay", j, k, err)
		}
		m.replays++
		return false
	case m.openable(j, k) && errors.Is(err, ErrUnknownTarget) && m.evicted(j, si):
		// The step's target was one of MaxOwnChains own chains that j had
		// made since, none of which the sender had answered yet: the bound
		// of docs/protocol.md section 9 ("a peer targeting one gets
		// unknown target"). The message is lost; it must stay rare.
		m.dropped[j][k] = true
		m.evictions++
		return true
	case m.openable(j, k):
		if err != nil {
			t.Fatalf("participant %d, entry %d (%v from %d): %v", j, k, si.typ, en.sender, err)
		}
		if msg.Control != en.setup || (!en.setup && string(msg.Plaintext) != en.text) || msg.Sender != m.net.sid(en.sender) {
			t.Fatalf("participant %d, entry %d: got %q control %v from %v, sent %q control %v by %d",
				j, k, msg.Plaintext, msg.Control, msg.Sender, en.text, en.setup, en.sender)
		}
		m.opened[j][k] = true
		m.opens++
		if en.sender != j {
			m.received[j][si.chain] = true
			if si.typ == wire.Handshake {
				m.own[j][si.tree] = true
			}
		}
		return true
	default:
		if !errors.Is(err, ErrChainNotStarted) && !errors.Is(err, ErrUnknownTarget) && !errors.Is(err, ErrUnknownTree) {
			t.Fatalf("participant %d, entry %d whose chain it cannot know: %v", j, k, err)
		}
		m.refusals++
		return false
	}
}

// step performs one random operation.
func (m *model) step(restart func(i int)) {
	net, rng := m.net, m.rng
	switch x := rng.IntN(100); {
	case x < 30:
		m.send(rng.IntN(net.n))
	case x < 85:
		j := rng.IntN(net.n)
		if len(m.pending[j]) == 0 {
			return
		}
		// Out of order within a window of the oldest pending entries,
		// older ones more likely (as a network reorders: mostly a little).
		w := min(len(m.pending[j]), 6)
		i := 0
		for i < w-1 && rng.IntN(2) == 0 {
			i++
		}
		k := m.pending[j][i]
		if m.deliver(j, k) || m.doomed(j, k) {
			m.pending[j] = append(m.pending[j][:i], m.pending[j][i+1:]...)
		}
	case x < 88:
		// Drop: a recipient never gets an entry (never its own: the
		// outbox waits for it).
		j := rng.IntN(net.n)
		if len(m.pending[j]) == 0 {
			return
		}
		i := rng.IntN(min(len(m.pending[j]), 6))
		k := m.pending[j][i]
		if m.entries[k].sender != j && !m.opened[j][k] {
			m.dropped[j][k] = true
			m.pending[j] = append(m.pending[j][:i], m.pending[j][i+1:]...)
		}
	case x < 93:
		// Duplicate: deliver an opened entry again.
		j := rng.IntN(net.n)
		if len(m.opened[j]) > 0 {
			k := rng.IntN(len(net.chain))
			if m.opened[j][k] {
				m.deliver(j, k)
			}
		}
	case x < 95:
		restart(rng.IntN(net.n))
	default:
		// Time passes: about 2.5 days over the whole run whatever its
		// length, past MaxChainAge many times but never near MaxSkipAge
		// (the model has no ages).
		net.now = net.now.Add(time.Duration(rng.Int64N(int64(m.maxAdvance))))
	}
}

// drain delivers everything not dropped, repeatedly, then checks that
// everything the model says is openable was opened.
func (m *model) drain() {
	for progress := true; progress; {
		progress = false
		for j := range m.net.n {
			var left []int
			for _, k := range m.pending[j] {
				if m.deliver(j, k) {
					progress = true
				} else if !m.opened[j][k] {
					left = append(left, k)
				}
			}
			m.pending[j] = left
		}
	}
	for j := range m.net.n {
		for _, k := range m.pending[j] {
			if m.openable(j, k) {
				m.net.t.Fatalf("participant %d never opened entry %d", j, k)
			}
		}
	}
}

// settle has everyone send and everyone receive, in chain order, for three
// rounds: pairs whose handshakes were lost re-initiate, and by the last
// round every message opens.
func (m *model) settle() {
	for round := range 3 {
		from := len(m.net.chain)
		for i := range m.net.n {
			m.send(i)
		}
		for k := from; k < len(m.net.chain); k++ {
			for j := range m.net.n {
				if m.dropped[j][k] {
					continue // a dead transaction's envelope
				}
				ok := m.deliver(j, k)
				if round == 2 && !ok {
					m.net.t.Fatalf("after settling, participant %d cannot open entry %d", j, k)
				}
			}
		}
		for j := range m.net.n {
			m.pending[j] = nil
		}
	}
}

func runModel(t *testing.T, n int, seed uint64, ops int, files bool) {
	var stores []Store
	var dirs []string
	if files {
		stores, dirs = fileStores(t, n)
	}
	net := newTestNet(t, n, stores)
	m := newModel(t, net, seed)
	m.maxAdvance = 100 * 24 * time.Hour / time.Duration(ops)
	m.deadRate = 12
	restart := func(i int) {
		if files {
			net.stores[i].(*FileStore).Close()
			s := openTestStore(t, dirs[i])
			t.Cleanup(func() { s.Close() })
			net.stores[i] = s
		}
		net.reopen(i)
	}
	for range ops {
		m.step(restart)
	}
	m.drain()
	m.settle()
	if m.opens < ops/4 {
		t.Fatalf("only %d opens in %d operations", m.opens, ops)
	}
	if m.evictions*100 > m.opens {
		t.Fatalf("%d messages lost to MaxOwnChains in %d opens", m.evictions, m.opens)
	}
	if ops >= 200 && m.deaths == 0 && m.deadRate > 0 {
		t.Fatal("no transaction died: the run does not exercise section 10.4")
	}
	t.Logf("%d envelopes, %d opens, %d refused as not yet openable, %d replays refused, %d dead transactions, %d lost to MaxOwnChains",
		len(net.chain), m.opens, m.refusals, m.replays, m.deaths, m.evictions)
}

func TestRandomConversations(t *testing.T) {
	runs, ops := 3, 500
	if raceEnabled {
		runs, ops = 2, 400
	}
	if testing.Short() {
		runs, ops = 1, 200
	}
	if f := soak(); f > 0 {
		runs, ops = runs*f, ops*4
	}
	for _, n := range []int{2, 5} {
		for seed := range uint64(runs) {
			t.Run(fmt.Sprintf("participants=%d/seed=%d", n, seed), func(t *testing.T) {
				runModel(t, n, seed, ops, false)
			})
		}
	}
}

func TestRandomConversationsFileStore(t *testing.T) {
	runs, ops := 1, 250
	if raceEnabled {
		ops = 150
	}
	if f := soak(); f > 0 {
		runs, ops = f/4+1, 1000
	}
	for seed := range uint64(runs) {
		for _, n := range []int{2, 5} {
			t.Run(fmt.Sprintf("participants=%d/seed=%d", n, seed), func(t *testing.T) {
				runModel(t, n, 1000+seed, ops, true)
			})
		}
	}
}
