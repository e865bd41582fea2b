package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
)

// Sessions use the forward-secret protocol (package chat, through
// service.Messenger): the commands here open the identity's message store
// beside its identity file, encrypted under the same passphrase.

// messenger opens the identity's Messenger once per run (run closes it).
func (c *cli) messenger(ctx context.Context) (*service.Messenger, error) {
	if c.m != nil {
		return c.m, nil
	}
	id, err := c.loadIdentity()
	if err != nil {
		return nil, err
	}
	opts := []service.MessengerOption{service.WithPrekeyReport(c.prekeyNote)}
	if c.noWait {
		opts = append(opts, service.WithoutWaiting())
	}
	if logN := identityFileWorkFactor(c.idPath); logN != 0 {
		opts = append(opts, service.WithStoreWorkFactor(logN))
	}
	m, err := service.OpenMessenger(ctx, c.client, id, chat.StoreDir(c.idPath), c.passphr, opts...)
	if err != nil {
		return nil, err
	}
	c.m = m
	return m, nil
}

// prekeyNote tells, on stderr, what an automatic prekey replenishment did.
func (c *cli) prekeyNote(r *service.PrekeyReport, err error) {
	if err != nil {
		fmt.Fprintf(c.stderr, "sessionctl: note: your prekeys could not be replenished (%s); 'sessionctl prekeys replenish' tries again\n", c.explain(err))
		return
	}
	fmt.Fprint(c.stderr, "sessionctl: note: "+prekeyText(r, false))
}

// txSigner signs for "sessionctl tx": with --nonce (counting up for
// several transactions) or the node's next nonce, for the node's chain
// (--chain-id must name it: the session's keys are on it).
func (c *cli) txSigner(m *service.Messenger) service.TxSigner {
	var next *uint64
	if c.txNonce != nil {
		n := *c.txNonce
		next = &n
	}
	return func(ctx context.Context, p tx.Payload) (*tx.Tx, error) {
		if c.txChainID != nil && *c.txChainID != m.ChainID() {
			return nil, usageError{fmt.Sprintf("tx: --chain-id %s is not the node's chain (%s), where the session and its keys are", *c.txChainID, m.ChainID())}
		}
		if next == nil {
			n, err := c.client.Nonce(ctx, m.Identity().SessionID)
			if err != nil {
				return nil, err
			}
			next = &n
		}
		t, err := tx.Sign(m.Identity(), m.ChainID(), *next, p)
		if err != nil {
			return nil, err
		}
		*next++
		return t, nil
	}
}

// printTxs prints signed transactions as "sessionctl tx" does: one base64
// line each; with --json the last one's object, and the others before it
// under "before".
func (c *cli) printTxs(txs []*tx.Tx, extra map[string]any) error {
	obj := func(t *tx.Tx) map[string]any {
		return map[string]any{
			"tx": base64.StdEncoding.EncodeToString(t.Bytes()), "txID": t.ID().String(), "type": t.Type().String(),
			"author": t.Author.String(), "nonce": t.Nonce, "chainID": t.ChainID.String(),
		}
	}
	var b strings.Builder
	out := obj(txs[len(txs)-1])
	var before []map[string]any
	for i, t := range txs {
		b.WriteString(base64.StdEncoding.EncodeToString(t.Bytes()) + "\n")
		if i < len(txs)-1 {
			before = append(before, obj(t))
		}
	}
	if before != nil {
		out["before"] = before
	}
	for k, v := range extra {
		out[k] = v
	}
	return c.output(out, b.String())
}

func (c *cli) sessionCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("session create", flag.ContinueOnError)
	var with multiFlag
	fs.Var(&with, "with", "participant Session ID (repeat)")
	metadata := fs.String("metadata", "", "public metadata (stored in the clear)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	with = append(with, pos...) // "session create --with A B C" works too
	if len(with) == 0 {
		return usageError{"session create: name at least one participant with --with"}
	}
	for _, s := range with {
		if _, err := parsePerson("session create --with", s); err != nil {
			return err
		}
	}
	m, err := c.messenger(ctx)
	if err != nil {
		return err
	}
	if c.printTx {
		t, cs, err := m.PrepareSession(ctx, with, []byte(*metadata), c.txSigner(m))
		if err != nil {
			return err
		}
		return c.printTxs([]*tx.Tx{t}, map[string]any{"session": cs.Session.String(), "claimed": cs.Claimed})
	}
	cs, err := m.CreateSession(ctx, with, []byte(*metadata))
	if err != nil {
		return err
	}
	out := map[string]any{"txID": cs.TxID.String(), "status": cs.Status, "session": cs.Session.String(), "claimed": cs.Claimed}
	text := fmt.Sprintf("session created: transaction %s", cs.TxID)
	if cs.Status == service.TxAccepted {
		out["height"] = cs.Height
		text += fmt.Sprintf(" accepted at height %d", cs.Height)
	} else {
		text += " pending"
	}
	text += "\nsession: " + cs.Session.String() + "\n"
	for i, id := range cs.Claimed {
		if id == 0 {
			text += fmt.Sprintf("note: %s had no one-time prekey left for you: your first messages to them rest on their signed prekey only (docs/protocol.md, section 11)\n", with[i])
		}
	}
	return c.output(out, text)
}

// sessionShow prints a session: its participants as the creator signed
// them, and the node's view of its state.
func (c *cli) sessionShow(ctx context.Context, args []string) error {
	sid, err := oneSession("session show", args)
	if err != nil {
		return err
	}
	m, err := c.messenger(ctx)
	if err != nil {
		return err
	}
	s, err := m.Session(ctx, sid)
	if err != nil {
		return c.wrongKind(ctx, "session", sid, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "session %s (%s)\ncreator: %s\ncreated: %s\nexpires: %s\nmessages: %d (read through %d)\nparticipants (as the creator signed them):\n",
		s.Session, s.Status, s.Creator, formatTime(s.CreatedAt), formatTime(s.ExpiresAt), s.LastSeq, s.ReadThrough)
	for i, p := range s.Participants {
		state := ""
		if i < len(s.States) {
			state = " (" + s.States[i] + ")"
		}
		fmt.Fprintf(&b, "  %s%s\n", p, state)
	}
	return c.output(sessionJSON(s), b.String())
}

func sessionJSON(s *service.SessionInfo) map[string]any {
	return map[string]any{
		"session": s.Session.String(), "creator": s.Creator, "participants": s.Participants,
		"participantStates": s.States, "status": s.Status, "createdAt": s.CreatedAt, "expiresAt": s.ExpiresAt,
		"metadata": s.Metadata, "lastSeq": s.LastSeq, "readThrough": s.ReadThrough, "position": s.Position,
	}
}

func (c *cli) sessionList(ctx context.Context, args []string) error {
	_, after, limit, err := c.pageFlags("session list", args, 0, "session list [--after POS] [--limit N]")
	if err != nil {
		return err
	}
	m, err := c.messenger(ctx)
	if err != nil {
		return err
	}
	list, err := m.Sessions(ctx, after, limit)
	if err != nil {
		return err
	}
	var b strings.Builder
	sessions := make([]map[string]any, 0, len(list.Sessions))
	for i := range list.Sessions {
		s := &list.Sessions[i]
		sessions = append(sessions, sessionJSON(s))
		var others []string
		for _, p := range s.Participants {
			if p != m.Identity().SessionID {
				others = append(others, p)
			}
		}
		fmt.Fprintf(&b, "%s (%s) created %s, %d messages", s.Session, s.Status, formatTime(s.CreatedAt), s.LastSeq)
		if s.LastSeq > s.ReadThrough {
			fmt.Fprintf(&b, ", %d new", s.LastSeq-s.ReadThrough)
		}
		fmt.Fprintf(&b, "\n  with %s\n", strings.Join(others, ", "))
	}
	if len(list.Sessions) == 0 {
		b.WriteString("no sessions (message requests are listed by 'sessionctl requests')\n")
	}
	return c.output(map[string]any{"sessions": sessions, "next": list.Next, "more": list.More}, b.String())
}

// maxText is the most bytes of text a message carries in a session of n
// participants. The protocol bounds the text at chat.MaxPlaintextSize
// whatever n (2 to 32), so that a message that starts a new ratchet step
// with every other participant still fits the chain's ciphertext limit.
func maxText(int) int { return chat.MaxPlaintextSize }

func (c *cli) send(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	file := fs.String("file", "", "send the contents of FILE")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{"send SESSION (TEXT | - | --file FILE)"}
	}
	sid, err := parseTarget("session", pos[0])
	if err != nil {
		return err
	}
	msg, err := c.readMessage("send", pos[1:], *file)
	if err != nil {
		return err
	}
	m, err := c.messenger(ctx)
	if err != nil {
		return err
	}
	s, err := m.Session(ctx, sid)
	if err != nil {
		return c.wrongKind(ctx, "session", sid, err)
	}
	if !slicesContains(s.Participants, m.Identity().SessionID) {
		return fmt.Errorf("not a participant: you (%s) are not in session %s", m.Identity().SessionID, sid)
	}
	if s.Status != service.SessionActive {
		return fmt.Errorf("session %s is %s: nothing can be sent to it", sid, s.Status)
	}
	// The size is checked before anything is encrypted or signed.
	if err := msg.checkSize(maxText(len(s.Participants)), len(s.Participants), "participants"); err != nil {
		return err
	}
	if c.printTx {
		txs, err := m.PrepareSend(ctx, sid, msg.text, c.txSigner(m))
		if err != nil {
			return err
		}
		return c.printTxs(txs, nil)
	}
	res, err := m.Send(ctx, sid, msg.text)
	if res != nil && len(res.Sent) > 0 {
		if perr := c.printSent("sent", res); err == nil {
			err = perr
		}
	}
	return err
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// printSent prints the transactions of a send: what went from the outbox
// first, setup messages, then the message.
func (c *cli) printSent(what string, res *service.SendResult) error {
	var b strings.Builder
	txs := make([]map[string]any, 0, len(res.Sent))
	for _, s := range res.Sent {
		txs = append(txs, map[string]any{
			"txID": s.TxID.String(), "status": s.Status, "height": s.Height, "seq": s.Seq, "control": s.Control, "resent": s.Resent,
		})
		label := what
		switch {
		case s.Resent:
			label = "resent from your outbox"
		case s.Control && res.Message() == nil:
			label = "ratchet message (fresh keys for your peers to answer to)"
		case s.Control:
			label = "setup message (handshakes that did not fit beside your text)"
		}
		fmt.Fprintf(&b, "%s: transaction %s", label, s.TxID)
		if s.Status == service.TxAccepted {
			fmt.Fprintf(&b, " accepted at height %d", s.Height)
		} else {
			b.WriteString(" pending")
		}
		if s.Seq != 0 && !s.Control {
			fmt.Fprintf(&b, " (message #%d)", s.Seq)
		}
		b.WriteString("\n")
	}
	out := map[string]any{"session": res.Session.String(), "transactions": txs}
	if m := res.Message(); m != nil {
		out["txID"], out["status"], out["height"], out["seq"] = m.TxID.String(), m.Status, m.Height, m.Seq
	}
	return c.output(out, b.String())
}

func (c *cli) resend(ctx context.Context, args []string) error {
	sid, err := oneSession("resend", args)
	if err != nil {
		return err
	}
	m, err := c.messenger(ctx)
	if err != nil {
		return err
	}
	res, err := m.Resend(ctx, sid)
	if err != nil && (res == nil || len(res.Sent) == 0) {
		return c.wrongKind(ctx, "session", sid, err)
	}
	if len(res.Sent) == 0 {
		return c.output(map[string]any{"session": sid.String(), "transactions": []any{}}, "nothing in your outbox for session "+sid.String()+"\n")
	}
	if perr := c.printSent("resent", res); err == nil {
		err = perr
	}
	return err
}

// shownMessage is a message as read, inbox and history print it.
type shownMessage struct {
	Target    string `json:"target"`
	Seq       uint64 `json:"seq"`
	Position  uint64 `json:"position,omitempty"`
	Sender    string `json:"sender"`
	FromSelf  bool   `json:"fromSelf"`
	Timestamp int64  `json:"timestamp"`
	Height    uint64 `json:"height,omitempty"`
	Text      string `json:"text,omitempty"`
	// Sealed marks a Seal envelope (channels, and sessions from before the
	// protocol): no forward secrecy.
	Sealed bool   `json:"sealed,omitempty"`
	Error  string `json:"error,omitempty"` // why it could not be opened
}

func (c *cli) shown(rs []service.Received) []shownMessage {
	out := make([]shownMessage, 0, len(rs))
	for _, r := range rs {
		s := shownMessage{Target: r.Session.String(), Seq: r.Seq, Position: r.Position, Sender: r.Sender, FromSelf: r.FromSelf,
			Timestamp: r.Timestamp, Height: r.Height, Sealed: r.Sealed}
		if s.Timestamp == 0 && !r.SentAt.IsZero() {
			s.Timestamp = r.SentAt.UnixMilli()
		}
		if r.Err != nil {
			s.Error = c.explain(r.Err)
		} else {
			s.Text = string(r.Text)
		}
		out = append(out, s)
	}
	return out
}

func (c *cli) printMessages(self string, shown []shownMessage, next uint64, showTarget bool) error {
	var b strings.Builder
	for _, m := range shown {
		who := m.Sender
		if who == self {
			who = "you"
		}
		if m.Sealed {
			who += " (sealed, no forward secrecy)"
		}
		where := ""
		if showTarget {
			where = " " + m.Target
		}
		if m.Error != "" {
			fmt.Fprintf(&b, "[%s]%s #%d %s: (cannot open: %s)\n", formatTime(m.Timestamp), where, m.Seq, who, m.Error)
			continue
		}
		fmt.Fprintf(&b, "[%s]%s #%d %s: %s\n", formatTime(m.Timestamp), where, m.Seq, who, m.Text)
	}
	if len(shown) == 0 {
		b.WriteString("no messages\n")
	}
	out := struct {
		Messages []shownMessage `json:"messages"`
		Next     uint64         `json:"next"`
	}{shown, next}
	return c.output(out, b.String())
}

// pageFlags parses a page command's --after and --limit, and requires
// exactly npos positional arguments (usage otherwise).
func (c *cli) pageFlags(name string, args []string, npos int, usage string) (pos []string, after uint64, limit int, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Uint64Var(&after, "after", 0, "cursor")
	fs.IntVar(&limit, "limit", 0, "page size")
	if pos, err = parseFlags(fs, args); err == nil && len(pos) != npos {
		err = usageError{usage}
	}
	return pos, after, limit, err
}

func (c *cli) read(ctx context.Context, args []string) error {
	pos, after, limit, err := c.pageFlags("read", args, 1, "read SESSION [--after SEQ] [--limit N]")
	if err != nil {
		return err
	}
	sid, err := parseTarget("session", pos[0])
	if err != nil {
		return err
	}
	m, err := c.messenger(ctx)
	if err != nil {
		return err
	}
	page, err := m.Read(ctx, sid, after, limit)
	if err != nil {
		return c.wrongKind(ctx, "session", sid, err)
	}
	if page.Outbox > 0 {
		fmt.Fprintf(c.stderr, "sessionctl: note: %d of your messages in this session are not on chain yet: 'sessionctl resend %s' sends them\n", page.Outbox, sid)
	}
	return c.printMessages(m.Identity().SessionID, c.shown(page.Messages), page.Next, false)
}

func (c *cli) inbox(ctx context.Context, args []string) error {
	_, after, limit, err := c.pageFlags("inbox", args, 0, "inbox [--after POS] [--limit N]")
	if err != nil {
		return err
	}
	m, err := c.messenger(ctx)
	if err != nil {
		return err
	}
	page, err := m.Inbox(ctx, after, limit)
	if err != nil {
		return err
	}
	return c.printMessages(m.Identity().SessionID, c.shown(page.Messages), page.Next, true)
}

func (c *cli) history(ctx context.Context, args []string) error {
	sid, err := oneSession("history", args)
	if err != nil {
		return err
	}
	m, err := c.messenger(ctx)
	if err != nil {
		return err
	}
	h, err := m.History(ctx, sid)
	if err != nil {
		return c.wrongKind(ctx, "session", sid, err)
	}
	var next uint64
	for _, r := range h {
		next = max(next, r.Seq)
	}
	return c.printMessages(m.Identity().SessionID, c.shown(h), next, false)
}

// channelRead fetches a page of a channel's posts and opens each (Seal).
func (c *cli) channelRead(ctx context.Context, args []string) error {
	pos, after, limit, err := c.pageFlags("channel read", args, 1, "channel read CHANNEL [--after SEQ] [--limit N]")
	if err != nil {
		return err
	}
	ch, err := parseTarget("channel", pos[0])
	if err != nil {
		return err
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	page, err := c.client.ChannelMessages(ctx, ch, after, limit)
	if err != nil {
		return c.wrongKind(ctx, "channel", ch, err)
	}
	shown := make([]shownMessage, 0, len(page.Messages))
	for i := range page.Messages {
		msg := &page.Messages[i]
		s := shownMessage{Target: msg.Target.String(), Seq: msg.Seq, Position: msg.Position, Sender: msg.Author,
			FromSelf: msg.Author == id.SessionID, Timestamp: msg.Timestamp, Height: msg.Height, Sealed: true}
		if pt, err := service.OpenMessage(id, msg); err != nil {
			s.Error = err.Error()
		} else {
			s.Text = string(pt)
		}
		shown = append(shown, s)
	}
	// Every post is sealed: no need to say so on each line.
	for i := range shown {
		shown[i].Sealed = false
	}
	return c.printMessages(id.SessionID, shown, page.Next, false)
}

func (c *cli) requests(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "policy" {
		return c.requestPolicy(ctx, args[1:])
	}
	fs := flag.NewFlagSet("requests", flag.ContinueOnError)
	after := fs.Uint64("after", 0, "the position to continue after (next of the previous page)")
	limit := fs.Int("limit", 0, "page size")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError{"requests [--after POS] [--limit N]"}
	}
	m, err := c.messenger(ctx)
	if err != nil {
		return err
	}
	r, err := m.Requests(ctx, *after, *limit)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, e := range r.Requests {
		fmt.Fprintf(&b, "%s from %s (%s)\n", e.Session, e.Creator, e.Status)
	}
	if len(r.Requests) == 0 {
		b.WriteString("no message requests\n")
	} else {
		b.WriteString("'sessionctl read SESSION' shows a request's messages; accept, decline, or block its creator.\n")
	}
	if r.More {
		fmt.Fprintf(&b, "more: sessionctl requests --after %d\n", r.Next)
	}
	return c.output(r, b.String())
}

// requestPolicy sets who may send the identity message requests.
func (c *cli) requestPolicy(ctx context.Context, args []string) error {
	pos, err := noFlags("requests", args)
	if err != nil {
		return err
	}
	var p tx.RequestPolicy
	switch strings.Join(pos, " ") {
	case "anyone":
		p = tx.RequestsFromAnyone
	case "contacts":
		p = tx.RequestsFromContacts
	default:
		return usageError{"requests policy (anyone | contacts)"}
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	return c.submit(ctx, id, "message requests from "+p.String(), &tx.SetRequestPolicy{Policy: p})
}

// answer accepts or declines a session.
func (c *cli) answer(ctx context.Context, verb string, args []string) error {
	pos, err := noFlags(verb, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{verb + " SESSION"}
	}
	sid, err := parseTarget("session", pos[0])
	if err != nil {
		return err
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	d := tx.DecisionAccept
	what := "accepted"
	if verb == "decline" {
		d, what = tx.DecisionDecline, "declined"
	}
	if err := c.submit(ctx, id, what, &tx.AcceptSession{Session: sid, Decision: d}); err != nil {
		return c.wrongKind(ctx, "session", sid, err)
	}
	return nil
}

func (c *cli) contactShow(ctx context.Context, args []string) error {
	pos, err := noFlags("contact show", args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"contact show ID"}
	}
	peer, err := parsePerson("contact show", pos[0])
	if err != nil {
		return err
	}
	id, err := crypto.LoadPublicIdentity(c.idPath)
	if err != nil {
		return err
	}
	st, err := c.client.Contact(ctx, id.SessionID, peer.String())
	if err != nil {
		return err
	}
	return c.output(map[string]any{"peer": peer.String(), "status": st}, fmt.Sprintf("%s: %s\n", peer, st))
}

func (c *cli) contactSet(ctx context.Context, name string, status tx.ContactStatus, args []string) error {
	pos, err := noFlags(name, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{name + " ID"}
	}
	peer, err := parsePerson(name, pos[0])
	if err != nil {
		return err
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	if peer.String() == id.SessionID {
		return usageError{name + ": that is your own Session ID"}
	}
	return c.submit(ctx, id, fmt.Sprintf("%s is now %s", peer, status), &tx.SetContact{Peer: peer, Status: status})
}

func (c *cli) prekeys(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("prekeys", flag.ContinueOnError)
	maxOneTime := fs.Int("one-time", -1, "with tx: publish at most N one-time prekeys")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	replenish := false
	switch {
	case len(pos) == 1 && pos[0] == "replenish":
		replenish = true
	case len(pos) != 0:
		return usageError{"prekeys [replenish]"}
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "one-time" })
	if set && (!c.printTx || *maxOneTime < 0) {
		return usageError{"prekeys: --one-time N (N >= 0) goes with 'sessionctl tx prekeys replenish'"}
	}
	m, err := c.messenger(ctx)
	if err != nil {
		return err
	}
	if c.printTx {
		txs, _, err := m.PreparePrekeys(ctx, *maxOneTime, c.txSigner(m))
		if err != nil {
			return err
		}
		if len(txs) == 0 {
			return fmt.Errorf("prekeys: nothing to publish: your signed prekey is this device's and %d or more one-time prekeys are unclaimed ('sessionctl prekeys')", service.PrekeyLowWater)
		}
		return c.printTxs(txs, nil)
	}
	var r *service.PrekeyReport
	if replenish {
		r, err = m.ReplenishPrekeys(ctx)
	} else {
		r, err = m.Prekeys(ctx)
	}
	if err != nil {
		return err
	}
	return c.output(prekeyJSON(r), prekeyText(r, true))
}

func prekeyJSON(r *service.PrekeyReport) map[string]any {
	out := map[string]any{
		"signedPrekeyId": r.SignedPrekeyID, "unclaimed": r.Unclaimed, "held": r.Held,
		"publishedSigned": r.PublishedSigned, "publishedOneTime": r.PublishedOneTime,
	}
	if !r.SignedPrekeyExpiresAt.IsZero() {
		out["signedPrekeyExpiresAt"] = r.SignedPrekeyExpiresAt.UnixMilli()
	}
	var txs []string
	for _, p := range r.Published {
		txs = append(txs, p.TxID.String())
	}
	out["transactions"] = txs
	return out
}

// prekeyText describes a prekey report; status adds the state on chain
// and on this device.
func prekeyText(r *service.PrekeyReport, status bool) string {
	var b strings.Builder
	if len(r.Published) > 0 {
		var parts []string
		if r.PublishedSigned != 0 {
			parts = append(parts, fmt.Sprintf("signed prekey %d", r.PublishedSigned))
		}
		if r.PublishedOneTime > 0 {
			parts = append(parts, fmt.Sprintf("%d one-time prekeys", r.PublishedOneTime))
		}
		fmt.Fprintf(&b, "prekeys: published %s (%d transaction", strings.Join(parts, " and "), len(r.Published))
		if len(r.Published) > 1 {
			b.WriteString("s")
		}
		b.WriteString(")\n")
	} else if !status {
		b.WriteString("prekeys: nothing to publish\n")
	}
	if status || len(r.Published) > 0 {
		if r.SignedPrekeyID != 0 {
			fmt.Fprintf(&b, "signed prekey %d, expires %s\n", r.SignedPrekeyID, r.SignedPrekeyExpiresAt.UTC().Format(time.RFC3339))
		} else {
			b.WriteString("no valid signed prekey on chain: nobody can start a session with you ('sessionctl prekeys replenish')\n")
		}
		fmt.Fprintf(&b, "one-time prekeys: %d unclaimed on chain, %d held on this device (and %d claimed, kept for their handshakes)\n", r.Unclaimed, r.Held, r.HeldClaimed)
	}
	return b.String()
}

// identityFileWorkFactor is the scrypt logN of the identity file at path
// (which loadIdentity has opened and checked), or 0 if it cannot be read:
// a new message store beside the file takes the same work factor.
func identityFileWorkFactor(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var f struct {
		KDF struct {
			LogN int `json:"logN"`
		} `json:"kdf"`
	}
	if json.Unmarshal(b, &f) != nil || f.KDF.LogN < 10 || f.KDF.LogN > 22 {
		return 0
	}
	return f.KDF.LogN
}
