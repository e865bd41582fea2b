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

	"github.com/luxfi/session/config"
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
	c.identity, c.passphr = id, pass
	return id, nil
}

func (c *cli) keygen(args []string) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fromSeed := fs.Bool("seed", false, "restore from a backup seed read from the terminal or standard input")
	force := fs.Bool("force", false, "overwrite an existing identity file")
	printSeed := fs.Bool("print-seed", false, "print the backup seed")
	pos, err := parseFlags(fs, args)
	if err != nil {
		if seedArgument(args) {
			return errSeedOnCommandLine
		}
		return err
	}
	if len(pos) != 0 {
		if *fromSeed || seedArgument(pos) {
			return errSeedOnCommandLine
		}
		return usageError{"keygen takes no arguments"}
	}
	if _, err := os.Stat(c.idPath); err == nil && !*force {
		return fmt.Errorf("%s exists: use --force to replace it (its identity is lost unless you kept its seed)", c.idPath)
	}
	var id *crypto.Identity
	if *fromSeed {
		seed, err := c.readSeed()
		if err != nil {
			return err
		}
		id, err = crypto.IdentityFromSeed(seed)
		clear(seed[:])
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

// seedArgument reports whether keygen's arguments hold what looks like a
// backup seed on the command line (--seed=HEX, or --seed HEX, which
// leaves HEX as an argument).
func seedArgument(args []string) bool {
	for _, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "seed" && hasValue && value != "true" && value != "false" {
			return true
		}
		if !strings.HasPrefix(a, "-") && looksLikeSeed(a) {
			return true
		}
	}
	return false
}

func (c *cli) whoami(ctx context.Context, args []string) error {
	pos, err := noFlags("whoami", args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
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

// submit signs payload as id and sends it, waiting for its block unless
// --no-wait; under "sessionctl tx" it prints the signed transaction
// instead. what names the action in the output.
func (c *cli) submit(ctx context.Context, id *crypto.Identity, what string, p tx.Payload) error {
	if c.printTx {
		return c.printSigned(ctx, id, p)
	}
	r, err := c.client.Submit(ctx, id, p)
	if err != nil {
		return err
	}
	extra := map[string]string{}
	if r.Session != ids.Empty {
		extra["session"] = r.Session.String()
	}
	if r.Channel != ids.Empty {
		extra["channel"] = r.Channel.String()
	}
	return c.submitted(ctx, what, r, extra)
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
	pos, err := noFlags("register", args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError{"register takes no arguments"}
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	if c.printTx {
		// The payload carries the chain's registration proof of work, bound
		// to a recent block (docs/chain.md section 3). Offline (tx
		// --chain-id --anchor), the chain's parameters are unknown: the
		// defaults.
		var p *tx.RegisterIdentity
		switch {
		case c.txChainID != nil && c.txAnchor != nil:
			p, err = service.SolveRegistration(ctx, id, *c.txChainID, config.DefaultRegistration(), *c.txAnchor, 0, 0)
		case c.txChainID != nil:
			return usageError{"tx --chain-id register: the work is bound to a recent block of the chain: give --anchor HEIGHT:BLOCKID ('sessionctl status --json' prints height and lastAcceptedID), or drop --chain-id to ask the node"}
		case c.txAnchor != nil:
			var chainID ids.ID
			if chainID, err = c.client.ChainID(ctx); err == nil {
				var reg config.Registration
				if reg, err = c.client.Registration(ctx); err == nil {
					p, err = service.SolveRegistration(ctx, id, chainID, reg, *c.txAnchor, 0, 0)
				}
			}
		default:
			p, err = c.client.RegistrationPayload(ctx, id)
		}
		if err != nil {
			return err
		}
		return c.printSigned(ctx, id, p)
	}
	m, err := c.messenger(ctx)
	if err != nil {
		return err
	}
	reg, err := m.Register(ctx)
	if err != nil && reg == nil {
		return err
	}
	out := map[string]any{"sessionId": id.SessionID, "height": reg.Height}
	var b strings.Builder
	switch {
	case reg.Already:
		out["status"] = "already registered"
		fmt.Fprintf(&b, "%s is already registered with these keys (at height %d)", id.SessionID, reg.Height)
	case c.noWait:
		out["status"], out["txID"] = service.TxPending, reg.TxID.String()
		fmt.Fprintf(&b, "registered %s: transaction %s pending", id.SessionID, reg.TxID)
	default:
		out["status"], out["txID"] = service.TxAccepted, reg.TxID.String()
		fmt.Fprintf(&b, "registered %s: transaction %s accepted at height %d", id.SessionID, reg.TxID, reg.Height)
	}
	if reg.Prekeys != nil {
		out["prekeys"] = prekeyJSON(reg.Prekeys)
	}
	if reg.Already && err == nil && (reg.Prekeys == nil || len(reg.Prekeys.Published) == 0) {
		b.WriteString(", and its prekeys are in place: nothing to do\n")
	} else {
		b.WriteString("\n")
		if reg.Prekeys != nil {
			b.WriteString(prekeyText(reg.Prekeys, false))
		}
	}
	if err != nil {
		// Registered, but the prekeys could not be published.
		_ = c.output(out, b.String())
		return fmt.Errorf("publishing prekeys: %w (run 'sessionctl prekeys replenish' to try again)", err)
	}
	return c.output(out, b.String())
}

// multiFlag collects a repeated string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parsePerson parses a Session ID (an identity), with an error that says
// so when s is a session, channel or other CB58 ID instead.
func parsePerson(where, s string) (crypto.SessionID, error) {
	sid, err := crypto.ParseSessionID(s)
	if err == nil {
		return sid, nil
	}
	if _, cbErr := ids.FromString(s); cbErr == nil {
		return sid, usageError{fmt.Sprintf("%s: %s is a session ID (a conversation, or a channel), not a Session ID: "+
			"name a person by their Session ID, 66 characters starting with 07 (as 'sessionctl whoami' prints it)", where, s)}
	}
	return sid, usageError{fmt.Sprintf("%s: %q is not a Session ID (%v): a Session ID is 66 characters, 07 and 64 hexadecimal digits", where, s, err)}
}

// parseTarget parses the CB58 ID of a session or channel, with an error
// that says so when s is a Session ID (a person) instead.
func parseTarget(kind, s string) (ids.ID, error) {
	id, err := ids.FromString(s)
	if err == nil {
		return id, nil
	}
	if _, pErr := crypto.ParseSessionID(s); pErr == nil {
		return ids.Empty, usageError{fmt.Sprintf("%s is a Session ID (a person), not a %s ID: give the %s's ID (CB58, as 'sessionctl %s create' printed it)",
			s, kind, kind, kind)}
	}
	return ids.Empty, usageError{fmt.Sprintf("%s %q is not a valid ID (a %s ID is CB58, as 'sessionctl %s create' printed it)", kind, s, kind, kind)}
}

// wrongKind turns an unknown-session error into "that is a channel" (and
// the reverse) when the ID names the other kind.
func (c *cli) wrongKind(ctx context.Context, kind string, target ids.ID, err error) error {
	code, ok := service.CodeOf(err)
	switch {
	case ok && code == service.CodeUnknownSession && kind == "session":
		if _, cerr := c.client.Channel(ctx, target, "", 1); cerr == nil {
			return usageError{fmt.Sprintf("%s is a channel, not a session: use 'sessionctl channel ...'", target)}
		}
	case ok && code == service.CodeUnknownChannel && kind == "channel":
		if _, serr := c.client.Session(ctx, target); serr == nil {
			return usageError{fmt.Sprintf("%s is a session, not a channel: use 'sessionctl send', 'read' or 'session show'", target)}
		}
	}
	return err
}

func (c *cli) closeSession(ctx context.Context, args []string) error {
	sid, err := oneSession("close", args)
	if err != nil {
		return err
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	if err := c.submit(ctx, id, "closed", &tx.CloseSession{Session: sid}); err != nil {
		return c.wrongKind(ctx, "session", sid, err)
	}
	return nil
}

func (c *cli) channel(ctx context.Context, args []string) error {
	// onChannel runs f on the one channel ID a subcommand takes.
	onChannel := func(sub string, f func(ids.ID) error) func([]string) error {
		return func(args []string) error {
			pos, err := noFlags("channel "+sub, args)
			if err != nil {
				return err
			}
			if len(pos) != 1 {
				return usageError{fmt.Sprintf("channel %s CHANNEL", sub)}
			}
			ch, err := parseTarget("channel", pos[0])
			if err != nil {
				return err
			}
			return c.wrongKind(ctx, "channel", ch, f(ch))
		}
	}
	// write signs and submits the payload a subcommand makes.
	write := func(what string, payload func(ids.ID) tx.Payload) func(ids.ID) error {
		return func(ch ids.ID) error {
			id, err := c.loadIdentity()
			if err != nil {
				return err
			}
			return c.submit(ctx, id, what, payload(ch))
		}
	}
	return group("channel", args, map[string]func([]string) error{
		"create":    func(args []string) error { return c.channelCreate(ctx, args) },
		"join":      onChannel("join", write("channel join", func(ch ids.ID) tx.Payload { return &tx.JoinChannel{Channel: ch} })),
		"leave":     onChannel("leave", write("channel leave", func(ch ids.ID) tx.Payload { return &tx.LeaveChannel{Channel: ch} })),
		"show":      onChannel("show", func(ch ids.ID) error { return c.channelShow(ctx, ch) }),
		"post":      func(args []string) error { return c.channelPost(ctx, args) },
		"read":      func(args []string) error { return c.channelRead(ctx, args) },
		"policy":    func(args []string) error { return c.channelPolicy(ctx, args) },
		"invite":    c.moderate(ctx, "invite", tx.ActionInvite, "invited"),
		"uninvite":  c.moderate(ctx, "uninvite", tx.ActionRevokeInvite, "invite revoked"),
		"remove":    c.moderate(ctx, "remove", tx.ActionRemove, "removed"),
		"ban":       c.moderate(ctx, "ban", tx.ActionBan, "banned"),
		"unban":     c.moderate(ctx, "unban", tx.ActionUnban, "unbanned"),
		"moderator": func(args []string) error { return c.channelModerator(ctx, args) },
		"delete":    func(args []string) error { return c.channelDelete(ctx, args) },
	})
}

func (c *cli) channelCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("channel create", flag.ContinueOnError)
	inviteOnly := fs.Bool("invite-only", false, "only invited identities may join")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"channel create NAME"}
	}
	if !tx.ValidChannelName(pos[0]) {
		return usageError{fmt.Sprintf("channel create: invalid name %q (1 to 64 bytes of UTF-8, no control characters)", pos[0])}
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	policy := tx.PolicyOpen
	if *inviteOnly {
		policy = tx.PolicyInviteOnly
	}
	return c.submit(ctx, id, "channel created", &tx.CreateChannel{Name: pos[0], JoinPolicy: policy})
}

func (c *cli) channelShow(ctx context.Context, ch ids.ID) error {
	info, err := c.client.Channel(ctx, ch, "", 0)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "channel %s %q (%s)\nowner: %s\ncreated: %s\ninvites outstanding: %d, banned: %d\nmembers (%d):\n",
		info.Channel, info.Name, info.JoinPolicy, info.Owner, formatTime(info.CreatedAt), info.InviteCount, info.BanCount, info.MemberCount)
	for i, m := range info.Members {
		role := ""
		if i < len(info.MemberRoles) && info.MemberRoles[i] != "member" {
			role = " (" + info.MemberRoles[i] + ")"
		}
		fmt.Fprintf(&b, "  %s%s\n", m, role)
	}
	return c.output(info, b.String())
}

func (c *cli) channelPost(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("channel post", flag.ContinueOnError)
	file := fs.String("file", "", "post the contents of FILE")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{"channel post CHANNEL (TEXT | - | --file FILE)"}
	}
	ch, err := parseTarget("channel", pos[0])
	if err != nil {
		return err
	}
	msg, err := c.readMessage("channel post", pos[1:], *file)
	if err != nil {
		return err
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	recipients, err := c.channelRecipients(ctx, id, ch)
	if err != nil {
		return c.wrongKind(ctx, "channel", ch, err)
	}
	if err := msg.checkSize(maxSealedText(len(recipients)), len(recipients), "members"); err != nil {
		return err
	}
	env, err := crypto.Seal(id, recipients, msg.text, service.MessageAD(ch))
	if err != nil {
		return err
	}
	return c.submit(ctx, id, "channel post", &tx.PostChannel{Channel: ch, Ciphertext: env})
}

// channelRecipients returns the public identities of every current member
// of the channel (the poster included), checking that the poster is one.
// Members who join later cannot read the post.
func (c *cli) channelRecipients(ctx context.Context, id *crypto.Identity, ch ids.ID) ([]*crypto.Identity, error) {
	var recipients []*crypto.Identity
	after := ""
	for {
		info, err := c.client.Channel(ctx, ch, after, 0)
		if err != nil {
			return nil, err
		}
		if int(info.MemberCount) > crypto.MaxRecipients {
			return nil, fmt.Errorf("channel has %d members: too many to seal to", info.MemberCount)
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
		if len(info.Members) == 0 || len(recipients) >= int(info.MemberCount) {
			break
		}
		after = info.Members[len(info.Members)-1]
	}
	for _, r := range recipients {
		if r.SessionID == id.SessionID {
			return recipients, nil
		}
	}
	return nil, errors.New("you are not a member of this channel: 'sessionctl channel join' first")
}

func (c *cli) status(ctx context.Context, args []string) error {
	pos, err := noFlags("status", args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
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
