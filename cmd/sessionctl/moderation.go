package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

// Channel moderation (docs/chain.md section 6): the owner sets the join
// policy and appoints moderators; owner and moderators invite, remove, ban
// and unban members and delete posts; anyone deletes their own posts.

// channelArgs parses "CHANNEL ITEM..." for a moderation subcommand.
func channelArgs(sub string, args []string, items string) (ids.ID, []string, error) {
	pos, err := noFlags("channel "+sub, args)
	if err != nil {
		return ids.Empty, nil, err
	}
	if len(pos) < 2 {
		return ids.Empty, nil, usageError{fmt.Sprintf("channel %s CHANNEL %s", sub, items)}
	}
	ch, err := parseTarget("channel", pos[0])
	if err != nil {
		return ids.Empty, nil, err
	}
	return ch, pos[1:], nil
}

// members parses up to config.MaxModerationItems Session IDs.
func members(where string, in []string) ([]crypto.SessionID, error) {
	if len(in) > config.MaxModerationItems {
		return nil, usageError{fmt.Sprintf("%s: %d members; at most %d in one transaction", where, len(in), config.MaxModerationItems)}
	}
	out := make([]crypto.SessionID, 0, len(in))
	for _, s := range in {
		sid, err := parsePerson(where, s)
		if err != nil {
			return nil, err
		}
		out = append(out, sid)
	}
	return out, nil
}

// moderate returns the subcommand that applies action to members.
func (c *cli) moderate(ctx context.Context, sub string, action tx.ModerationAction, what string) func([]string) error {
	return func(args []string) error {
		ch, rest, err := channelArgs(sub, args, "ID [ID ...]")
		if err != nil {
			return err
		}
		return c.moderateMembers(ctx, "channel "+sub, ch, action, what, rest)
	}
}

func (c *cli) moderateMembers(ctx context.Context, where string, ch ids.ID, action tx.ModerationAction, what string, in []string) error {
	ms, err := members(where, in)
	if err != nil {
		return err
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	label := fmt.Sprintf("%s %d member", what, len(ms))
	if len(ms) != 1 {
		label += "s"
	}
	return c.wrongKind(ctx, "channel", ch, c.submit(ctx, id, label, &tx.ModerateChannel{Channel: ch, Action: action, Members: ms}))
}

func (c *cli) channelModerator(ctx context.Context, args []string) error {
	ch, rest, err := channelArgs("moderator", args, "(add | remove) ID [ID ...]")
	if err != nil {
		return err
	}
	if len(rest) < 2 || (rest[0] != "add" && rest[0] != "remove") {
		return usageError{"channel moderator CHANNEL (add | remove) ID [ID ...]"}
	}
	if rest[0] == "add" {
		return c.moderateMembers(ctx, "channel moderator add", ch, tx.ActionMakeModerator, "made moderator:", rest[1:])
	}
	return c.moderateMembers(ctx, "channel moderator remove", ch, tx.ActionRevokeModerator, "moderator role revoked:", rest[1:])
}

func (c *cli) channelPolicy(ctx context.Context, args []string) error {
	ch, rest, err := channelArgs("policy", args, "(open | invite-only)")
	if err != nil {
		return err
	}
	var p tx.JoinPolicy
	switch strings.Join(rest, " ") {
	case "open":
		p = tx.PolicyOpen
	case "invite-only":
		p = tx.PolicyInviteOnly
	default:
		return usageError{"channel policy CHANNEL (open | invite-only)"}
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	return c.wrongKind(ctx, "channel", ch, c.submit(ctx, id, "channel policy "+rest[0], &tx.SetChannelPolicy{Channel: ch, JoinPolicy: p}))
}

func (c *cli) channelDelete(ctx context.Context, args []string) error {
	ch, rest, err := channelArgs("delete", args, "SEQ [SEQ ...]")
	if err != nil {
		return err
	}
	if len(rest) > config.MaxDeleteItems {
		return usageError{fmt.Sprintf("channel delete: %d posts; at most %d in one transaction", len(rest), config.MaxDeleteItems)}
	}
	var seqs []uint64
	for _, s := range rest {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return usageError{fmt.Sprintf("channel delete: %q is not a post's sequence number (1, 2, ... as 'channel read' shows them)", s)}
		}
		seqs = append(seqs, n)
	}
	id, err := c.loadIdentity()
	if err != nil {
		return err
	}
	return c.wrongKind(ctx, "channel", ch, c.submit(ctx, id, fmt.Sprintf("deleted %d posts", len(seqs)), &tx.DeletePosts{Channel: ch, Seqs: seqs}))
}
