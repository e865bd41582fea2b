package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
)

// loadIdentity reads the identity file with the passphrase, once per run.
func (c *cli) loadIdentity() (*crypto.Identity, error) {
	if c.identity != nil {
		return c.identity, nil
	}
	if _, err := os.Stat(c.idPath); err != nil {
		return nil, err
	}
	pass, err := c.pass.get("Passphrase for "+c.idPath+": ", false)
	if err != nil {
		return nil, err
	}
	id, err := crypto.LoadIdentity(c.idPath, pass)
	if err != nil {
		return nil, err
	}
	c.identity = id
	return id, nil
}

func (c *cli) keygen(args []string) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	seedHex := fs.String("seed", "", "restore from this 64-hex-character seed")
	force := fs.Bool("force", false, "overwrite an existing identity file")
	printSeed := fs.Bool("print-seed", false, "print the backup seed")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError{"keygen takes no arguments"}
	}
	if _, err := os.Stat(c.idPath); err == nil && !*force {
		return fmt.Errorf("%s exists: use --force to replace it (its identity is lost unless you kept its seed)", c.idPath)
	}
	var id *crypto.Identity
	if *seedHex != "" {
		b, err := hex.DecodeString(strings.TrimSpace(*seedHex))
		if err != nil || len(b) != crypto.SeedSize {
			return usageError{"--seed must be 64 hexadecimal characters"}
		}
		id, err = crypto.IdentityFromSeed([crypto.SeedSize]byte(b))
		if err != nil {
			return err
		}
	} else if id, err = crypto.GenerateIdentity(); err != nil {
		return err
	}
	pass, err := c.pass.get("New passphrase for "+c.idPath+": ", true)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.idPath), 0o700); err != nil {
		return err
	}
	if err := id.Save(c.idPath, pass); err != nil {
		return err
	}
	seed, _ := id.Seed()
	out := struct {
		SessionID string `json:"sessionId"`
		File      string `json:"file"`
		Seed      string `json:"seed,omitempty"`
	}{SessionID: id.SessionID, File: c.idPath}
	text := fmt.Sprintf("Session ID: %s\nSaved to:   %s\n", id.SessionID, c.idPath)
	if *printSeed {
		out.Seed = hex.EncodeToString(seed[:])
		text += "Backup seed (restores this identity with 'keygen --seed'; keep it secret):\n  " + out.Seed + "\n"
	}
	return c.output(out, text)
}

func (c *cli) whoami(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return usageError{"whoami takes no arguments"}
	}
	id, err := crypto.LoadPublicIdentity(c.idPath)
	if err != nil {
		return err
	}
	registered := "unknown (node unreachable)"
	if _, err := c.client.Identity(ctx, id.SessionID); err == nil {
		registered = "yes"
	} else if code, ok := service.CodeOf(err); ok && code == service.CodeUnknownIdentity {
		registered = "no"
	}
	out := struct {
		SessionID  string `json:"sessionId"`
		File       string `json:"file"`
		Registered string `json:"registered"`
	}{id.SessionID, c.idPath, registered}
	return c.output(out, fmt.Sprintf("%s\nfile: %s\nregistered on %s: %s\n", id.SessionID, c.idPath, c.node, registered))
}

// submitted prints a transaction's outcome, waiting for its block unless
// --no-wait.
func (c *cli) submitted(ctx context.Context, what string, r *service.TxReply, extra map[string]string) error {
	out := map[string]any{"txID": r.TxID.String(), "status": "pending"}
	for k, v := range extra {
		out[k] = v
	}
	text := fmt.Sprintf("%s: transaction %s", what, r.TxID)
	if !c.noWait {
		st, err := c.client.WaitAccepted(ctx, r.TxID)
		if err != nil {
			return err
		}
		out["status"], out["height"] = st.Status, st.Height
		text += fmt.Sprintf(" accepted at height %d", st.Height)
	} else {
		text += " pending"
	}
	text += "\n"
	for _, k := range []string{"session", "channel"} {
		if v, ok := extra[k]; ok {
			text += fmt.Sprintf("%s: %s\n", k, v)
		}
	}
	return c.output(out, text)
}

func (c *cli) register(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return usageError{"register takes no arguments"}
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	r, err := c.client.Register(ctx, id)
	if err != nil {
		return err
	}
	return c.submitted(ctx, "registered "+id.SessionID, r, nil)
}

// multiFlag collects a repeated string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

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
	for _, p := range with {
		if _, err := crypto.ParseSessionID(p); err != nil {
			return usageError{fmt.Sprintf("session create: %q: %v", p, err)}
		}
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	r, err := c.client.CreateSessionWithMetadata(ctx, id, []byte(*metadata), with...)
	if err != nil {
		return err
	}
	return c.submitted(ctx, "session created", r, map[string]string{"session": r.Session.String()})
}

func parseTarget(kind, s string) (ids.ID, error) {
	id, err := ids.FromString(s)
	if err != nil {
		return ids.Empty, usageError{fmt.Sprintf("%s %q is not a valid ID", kind, s)}
	}
	return id, nil
}

func (c *cli) sessionShow(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageError{"session show SESSION"}
	}
	sid, err := parseTarget("session", args[0])
	if err != nil {
		return err
	}
	s, err := c.client.Session(ctx, sid)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "session %s (%s)\ncreator: %s\ncreated: %s\nexpires: %s\nmessages: %d\nparticipants:\n",
		s.Session, s.Status, s.Creator, formatTime(s.CreatedAt), formatTime(s.ExpiresAt), s.LastSeq)
	for _, p := range s.Participants {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return c.output(s, b.String())
}

func (c *cli) send(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError{"send SESSION TEXT"}
	}
	sid, err := parseTarget("session", pos[0])
	if err != nil {
		return err
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	r, err := c.client.SendSealed(ctx, id, sid, []byte(pos[1]))
	if err != nil {
		return err
	}
	return c.submitted(ctx, "sent", r, nil)
}

// shownMessage is a message as read/inbox print it.
type shownMessage struct {
	Target    string `json:"target"`
	Seq       uint64 `json:"seq"`
	Position  uint64 `json:"position"`
	Sender    string `json:"sender"`
	Timestamp int64  `json:"timestamp"`
	Height    uint64 `json:"height"`
	Text      string `json:"text,omitempty"`
	Error     string `json:"error,omitempty"` // why it could not be opened
}

// open decrypts and verifies messages; a message that fails is shown with
// the reason instead of stopping the listing.
func (c *cli) open(id *crypto.Identity, msgs []service.Message) []shownMessage {
	out := make([]shownMessage, 0, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		s := shownMessage{Target: m.Target.String(), Seq: m.Seq, Position: m.Position, Sender: m.Author, Timestamp: m.Timestamp, Height: m.Height}
		pt, err := service.OpenMessage(id, m)
		if err != nil {
			s.Error = err.Error()
		} else {
			s.Text = string(pt)
		}
		out = append(out, s)
	}
	return out
}

func (c *cli) printMessages(id *crypto.Identity, shown []shownMessage, next uint64, showTarget bool) error {
	var b strings.Builder
	for _, m := range shown {
		who := m.Sender
		if who == id.SessionID {
			who = "you"
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

func (c *cli) pageFlags(name string, args []string) (pos []string, after uint64, limit int, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Uint64Var(&after, "after", 0, "cursor")
	fs.IntVar(&limit, "limit", 0, "page size")
	pos, err = parseFlags(fs, args)
	return pos, after, limit, err
}

func (c *cli) read(ctx context.Context, args []string) error {
	return c.readTarget(ctx, "read", "session", args, c.client.Messages)
}

// readTarget fetches a page of a session's messages or a channel's posts,
// opens and verifies each and prints them.
func (c *cli) readTarget(ctx context.Context, name, kind string, args []string,
	fetch func(context.Context, ids.ID, uint64, int) (*service.MessagesReply, error)) error {
	pos, after, limit, err := c.pageFlags(name, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{fmt.Sprintf("%s %s [--after SEQ] [--limit N]", name, strings.ToUpper(kind))}
	}
	target, err := parseTarget(kind, pos[0])
	if err != nil {
		return err
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	page, err := fetch(ctx, target, after, limit)
	if err != nil {
		return err
	}
	return c.printMessages(id, c.open(id, page.Messages), page.Next, false)
}

func (c *cli) inbox(ctx context.Context, args []string) error {
	pos, after, limit, err := c.pageFlags("inbox", args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError{"inbox [--after POS] [--limit N]"}
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	page, err := c.client.Inbox(ctx, id.SessionID, after, limit)
	if err != nil {
		return err
	}
	return c.printMessages(id, c.open(id, page.Messages), page.Next, true)
}

func (c *cli) closeSession(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageError{"close SESSION"}
	}
	sid, err := parseTarget("session", args[0])
	if err != nil {
		return err
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	r, err := c.client.CloseSession(ctx, id, sid)
	if err != nil {
		return err
	}
	return c.submitted(ctx, "closed", r, nil)
}

func (c *cli) channel(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"channel: want create, join, leave, post, read or show"}
	}
	sub, args := args[0], args[1:]
	if sub == "read" {
		return c.channelRead(ctx, args)
	}
	fs := flag.NewFlagSet("channel "+sub, flag.ContinueOnError)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	want := map[string]int{"create": 1, "join": 1, "leave": 1, "show": 1, "post": 2}
	n, ok := want[sub]
	if !ok {
		return usageError{"channel: unknown subcommand " + sub}
	}
	if len(pos) != n {
		return usageError{fmt.Sprintf("channel %s takes %d argument(s)", sub, n)}
	}
	if sub == "create" {
		if !tx.ValidChannelName(pos[0]) {
			return usageError{fmt.Sprintf("channel create: invalid name %q", pos[0])}
		}
		id, err := c.loadIdentity()
		if err != nil {
			return err
		}
		r, err := c.client.CreateChannel(ctx, id, pos[0])
		if err != nil {
			return err
		}
		return c.submitted(ctx, "channel created", r, map[string]string{"channel": r.Channel.String()})
	}
	ch, err := parseTarget("channel", pos[0])
	if err != nil {
		return err
	}
	if sub == "show" {
		info, err := c.client.Channel(ctx, ch, "", 0)
		if err != nil {
			return err
		}
		var b strings.Builder
		fmt.Fprintf(&b, "channel %s %q\nowner: %s\ncreated: %s\nmembers (%d):\n", info.Channel, info.Name, info.Owner, formatTime(info.CreatedAt), info.MemberCount)
		for _, m := range info.Members {
			fmt.Fprintf(&b, "  %s\n", m)
		}
		return c.output(info, b.String())
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	var r *service.TxReply
	switch sub {
	case "join":
		r, err = c.client.JoinChannel(ctx, id, ch)
	case "leave":
		r, err = c.client.LeaveChannel(ctx, id, ch)
	case "post":
		r, err = c.postSealed(ctx, id, ch, []byte(pos[1]))
	}
	if err != nil {
		return err
	}
	return c.submitted(ctx, "channel "+sub, r, nil)
}

// maxChannelRecipients bounds the members a post is sealed to (the
// envelope's recipient limit).
const maxChannelRecipients = crypto.MaxRecipients

// postSealed seals text to every current member of the channel (the poster
// included) with the channel's associated data and posts it. Members who
// join later cannot read earlier posts.
func (c *cli) postSealed(ctx context.Context, id *crypto.Identity, ch ids.ID, text []byte) (*service.TxReply, error) {
	var recipients []*crypto.Identity
	after := ""
	for {
		info, err := c.client.Channel(ctx, ch, after, 0)
		if err != nil {
			return nil, err
		}
		for _, m := range info.Members {
			if m == id.SessionID {
				recipients = append(recipients, id.PublicIdentity())
				continue
			}
			pub, err := c.client.PublicIdentity(ctx, m)
			if err != nil {
				return nil, err
			}
			recipients = append(recipients, pub)
		}
		if len(recipients) > maxChannelRecipients {
			return nil, fmt.Errorf("channel has more than %d members: too many to seal to", maxChannelRecipients)
		}
		if len(info.Members) == 0 || len(recipients) >= int(info.MemberCount) {
			break
		}
		after = info.Members[len(info.Members)-1]
	}
	member := false
	for _, r := range recipients {
		member = member || r.SessionID == id.SessionID
	}
	if !member {
		return nil, errors.New("you are not a member of this channel: 'sessionctl channel join' first")
	}
	env, err := crypto.Seal(id, recipients, text, service.MessageAD(ch))
	if err != nil {
		return nil, err
	}
	return c.client.Post(ctx, id, ch, env)
}

func (c *cli) channelRead(ctx context.Context, args []string) error {
	return c.readTarget(ctx, "channel read", "channel", args, c.client.ChannelMessages)
}

func (c *cli) status(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return usageError{"status takes no arguments"}
	}
	s, err := c.client.Status(ctx)
	if err != nil {
		return err
	}
	text := fmt.Sprintf("chain %s\nheight %d (%s), last accepted %s\nmempool %d txs\nidentities %d, sessions %d, channels %d, messages %d stored (%d pruned)\n",
		s.ChainID, s.Height, formatTime(s.LastAcceptedTime), s.LastAcceptedID, s.MempoolTxs,
		s.Identities, s.Sessions, s.Channels, s.MessagesStored, s.MessagesPruned)
	return c.output(s, text)
}
