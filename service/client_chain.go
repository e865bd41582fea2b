package service

import (
	"context"

	"github.com/luxfi/ids"
)

// The client side of the consent, prekey and moderation methods: one
// method per RPC method. The signing helpers are in sign.go, the
// verification of what these return in verify.go.

// PublishPrekeysTx is session.publishPrekeys.
func (c *Client) PublishPrekeysTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "publishPrekeys", signed)
}

// AcceptSessionTx is session.acceptSession.
func (c *Client) AcceptSessionTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "acceptSession", signed)
}

// SetContactTx is session.setContact.
func (c *Client) SetContactTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "setContact", signed)
}

// SetChannelPolicyTx is session.setChannelPolicy.
func (c *Client) SetChannelPolicyTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "setChannelPolicy", signed)
}

// ModerateChannelTx is session.moderateChannel.
func (c *Client) ModerateChannelTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "moderateChannel", signed)
}

// DeletePostsTx is session.deletePosts.
func (c *Client) DeletePostsTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "deletePosts", signed)
}

// SetRequestPolicyTx is session.setRequestPolicy.
func (c *Client) SetRequestPolicyTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "setRequestPolicy", signed)
}

// RawPrekeyBundle is session.getPrekeyBundle, unverified: use
// PrekeyBundle (or VerifyPrekeyBundle) before using any key in it.
func (c *Client) RawPrekeyBundle(ctx context.Context, sessionID string) (*PrekeyBundleReply, error) {
	return c.RawPrekeyBundleFor(ctx, PrekeyBundleArgs{SessionID: sessionID})
}

// RawPrekeyBundleFor is session.getPrekeyBundle with the claimer (and, for
// a claim in a sendMessage, the session), so the one-time prekey served is
// one that claimer may claim; unverified.
func (c *Client) RawPrekeyBundleFor(ctx context.Context, args PrekeyBundleArgs) (*PrekeyBundleReply, error) {
	var r PrekeyBundleReply
	if err := c.Call(ctx, "getPrekeyBundle", args, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Claims is session.getClaims: the claim log of sessionID's prekeys after
// the position cursor (0: from the first).
func (c *Client) Claims(ctx context.Context, sessionID string, after uint64, limit int) (*ClaimsReply, error) {
	var r ClaimsReply
	if err := c.Call(ctx, "getClaims", ClaimsArgs{SessionID: sessionID, After: after, Limit: limit}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Tx is session.getTx: the signed bytes of an accepted transaction.
func (c *Client) Tx(ctx context.Context, txID ids.ID) (*GetTxReply, error) {
	var r GetTxReply
	if err := c.Call(ctx, "getTx", GetTxArgs{TxID: txID.String()}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Sessions is session.listSessions: the sessions sessionID accepted or
// created, after the position cursor (0: from the first).
func (c *Client) Sessions(ctx context.Context, sessionID string, after uint64, limit int) (*SessionsReply, error) {
	var r SessionsReply
	if err := c.Call(ctx, "listSessions", SessionsArgs{SessionID: sessionID, After: after, Limit: limit}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Requests is session.getRequests: pending message requests to sessionID,
// one per creator, in the order they came, after the position cursor (0:
// from the first).
func (c *Client) Requests(ctx context.Context, sessionID string, after uint64, limit int) (*RequestsReply, error) {
	var r RequestsReply
	if err := c.Call(ctx, "getRequests", RequestsArgs{SessionID: sessionID, After: after, Limit: limit}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Contact is session.getContact: sessionID's status for peer ("none",
// "contact" or "blocked").
func (c *Client) Contact(ctx context.Context, sessionID, peer string) (string, error) {
	var r ContactReply
	if err := c.Call(ctx, "getContact", ContactArgs{SessionID: sessionID, Peer: peer}, &r); err != nil {
		return "", err
	}
	return r.Status, nil
}

// ChannelMembership is session.isChannelMember with the whole answer: role,
// invite and ban.
func (c *Client) ChannelMembership(ctx context.Context, channel ids.ID, sessionID string) (*MembershipReply, error) {
	var r MembershipReply
	if err := c.Call(ctx, "isChannelMember", MembershipArgs{Channel: channel.String(), SessionID: sessionID}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
