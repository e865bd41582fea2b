package main

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
)

// txCommands are the write commands "sessionctl tx" can print; for a
// group, its write subcommands.
var txCommands = map[string][]string{
	"register": nil, "send": nil, "close": nil, "accept": nil, "decline": nil, "block": nil, "unblock": nil,
	"session":  {"create"},
	"requests": {"policy"},
	"prekeys":  {"replenish"},
	"contact":  {"add", "remove"},
	"channel":  {"create", "join", "leave", "post", "policy", "invite", "uninvite", "remove", "ban", "unban", "moderator", "delete"},
}

// isTxCommand reports whether args start with a write command.
func isTxCommand(args []string) bool {
	subs, ok := txCommands[args[0]]
	if !ok {
		return false
	}
	if subs == nil {
		return true
	}
	return len(args) > 1 && slices.Contains(subs, args[1])
}

// tx runs a write command in print mode: its transaction is signed and
// printed, not sent.
func (c *cli) tx(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("tx", flag.ContinueOnError)
	nonce := fs.Uint64("nonce", 0, "sign with this nonce")
	chainID := fs.String("chain-id", "", "sign for this chain")
	anchor := fs.String("anchor", "", "bind a registration's work to this block (HEIGHT:BLOCKID)")
	// The flags of tx come before the command; the rest belongs to it.
	i := 0
	for i < len(args) && flagShaped.MatchString(args[i]) {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		i++
		if !hasValue && (name == "nonce" || name == "chain-id" || name == "anchor") && i < len(args) {
			i++
		}
	}
	if _, err := parseFlags(fs, args[:i]); err != nil {
		return err
	}
	args = args[i:]
	if len(args) == 0 {
		return usageError{"tx: name the write command whose transaction to print ('sessionctl tx --help')"}
	}
	if args[0] == "help" {
		return helpRequested{"tx"}
	}
	if !isTxCommand(args) {
		return usageError{fmt.Sprintf("tx: %q is not a write command: tx prints the transactions of register, session create, send, close, "+
			"accept, decline, contact add|remove, block, unblock, requests policy, prekeys replenish and channel create|join|leave|post|policy|invite|uninvite|remove|ban|unban|moderator|delete",
			strings.Join(args[:min(2, len(args))], " "))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["nonce"] {
		c.txNonce = nonce
	}
	if set["chain-id"] {
		id, err := ids.FromString(*chainID)
		if err != nil {
			return usageError{fmt.Sprintf("tx: --chain-id %q is not a chain ID (CB58, as 'sessionctl status' prints it)", *chainID)}
		}
		c.txChainID = &id
	}
	if set["anchor"] {
		h, bid, ok := strings.Cut(*anchor, ":")
		height, herr := strconv.ParseUint(h, 10, 64)
		id, ierr := ids.FromString(bid)
		if !ok || herr != nil || ierr != nil {
			return usageError{fmt.Sprintf("tx: --anchor %q is not HEIGHT:BLOCKID (the height and lastAcceptedID 'sessionctl status --json' prints)", *anchor)}
		}
		c.txAnchor = &service.Anchor{Height: height, ID: id}
	}
	c.printTx = true
	return c.dispatch(ctx, args[0], args[1:])
}

// printSigned signs payload as id with its next nonce (or --nonce) for the
// node's chain (or --chain-id) and prints the transaction.
func (c *cli) printSigned(ctx context.Context, id *crypto.Identity, p tx.Payload) error {
	var chainID ids.ID
	if c.txChainID != nil {
		chainID = *c.txChainID
	} else {
		var err error
		if chainID, err = c.client.ChainID(ctx); err != nil {
			return err
		}
	}
	var nonce uint64
	if c.txNonce != nil {
		nonce = *c.txNonce
	} else {
		var err error
		if nonce, err = c.client.Nonce(ctx, id.SessionID); err != nil {
			return err
		}
	}
	t, err := tx.Sign(id, chainID, nonce, p)
	if err != nil {
		return err
	}
	b64 := base64.StdEncoding.EncodeToString(t.Bytes())
	out := map[string]any{
		"tx": b64, "txID": t.ID().String(), "type": t.Type().String(),
		"author": id.SessionID, "nonce": nonce, "chainID": chainID.String(),
	}
	switch t.Type() {
	case tx.TypeCreateSession:
		out["session"] = tx.SessionIDFor(chainID, t.Author, nonce).String()
	case tx.TypeCreateChannel:
		out["channel"] = tx.ChannelIDFor(chainID, t.Author, nonce).String()
	}
	return c.output(out, b64+"\n")
}
