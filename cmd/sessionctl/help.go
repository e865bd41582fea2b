package main

import (
	"fmt"
	"strings"

	"github.com/luxfi/session/config"
)

// usage is the overview "sessionctl help" prints.
var usage = `sessionctl: post-quantum private messaging on a SessionVM chain

Usage: sessionctl [flags] <command> [arguments]

Identity (local, no node needed):
  keygen [--seed] [--force] [--print-seed]       create the identity file (or restore it from its backup seed)
  whoami                                         print your Session ID

Chain:
  register                                       publish your identity on the chain
  session create --with ID [--with ID ...] [--metadata TEXT]
  session show SESSION                           participants, status, expiry
  send SESSION (TEXT | - | --file FILE)          seal a message to every participant (you included) and send it
  read SESSION [--after SEQ] [--limit N]         fetch, open and verify the messages of a session
  inbox [--after POS] [--limit N]                everything addressed to you, across sessions
  close SESSION
  channel create NAME | join CHANNEL | leave CHANNEL | show CHANNEL
  channel post CHANNEL (TEXT | - | --file FILE)  seal a message to every current member and post it
  channel read CHANNEL [--after SEQ] [--limit N]
  tx [--nonce N] [--chain-id ID] [--anchor H:ID] COMMAND ...  print a write command's signed transaction instead of sending it
  status                                         the node's chain status

Flags:
  --node URL        JSON-RPC endpoint (env SESSION_NODE, default ` + defaultNode + `)
  --identity FILE   identity file (env SESSION_IDENTITY, default ~/.sessionctl/identity.json)
  --json            machine-readable output
  --timeout D       how long to wait for the node, including acceptance (default 60s)
  --no-wait         return once the node admits a transaction, without waiting for its block

Two kinds of ID: a Session ID names a person (an identity: 66 characters
starting with 07, as 'whoami' prints it); a session ID names a conversation
(CB58, as 'session create' prints it). Channels have CB58 IDs too.

The passphrase is read from SESSION_PASSPHRASE, or asked for on the terminal.
'sessionctl COMMAND --help' (or 'sessionctl help COMMAND') explains a command.
`

// sizeLimits is the message size paragraph of send's help, computed from
// the chain's ciphertext limit and the envelope's overhead.
func sizeLimits() string {
	var b strings.Builder
	fmt.Fprintf(&b, "A message is sealed to every participant, you included, and the chain takes at\n"+
		"most %s bytes of ciphertext per message. Sealing adds a fixed part and a part\n"+
		"per participant, so the text can be at most:\n", commas(config.MaxCiphertextSize))
	for _, n := range []int{2, 3, 5, 10, 20, config.MaxParticipants} {
		fmt.Fprintf(&b, "  %2d participants: %7s bytes\n", n, commas(int64(maxSealedText(n))))
	}
	b.WriteString("A longer text is refused before anything is signed or sent.\n")
	return b.String()
}

const textInput = `The text is the TEXT argument, or standard input with -, or the contents of
FILE with --file (one trailing newline is dropped from both). Text that starts
with '-' can be given after --:  sessionctl send SESSION -- "-x marks the spot".
An empty message (or one of whitespace only) is refused.
`

// commandHelp is the usage of each command and subcommand, printed by
// "sessionctl COMMAND --help" and "sessionctl help COMMAND".
var commandHelp = map[string]func() string{
	"keygen": func() string {
		return `Usage: sessionctl keygen [--seed] [--force] [--print-seed]

Creates your identity (an ML-KEM-768 and an ML-DSA-65 key pair, derived from
a random 32-byte backup seed), saves it encrypted with your passphrase to the
identity file (--identity, default ~/.sessionctl/identity.json) and prints
your Session ID.

  --print-seed  also print the backup seed: whoever has it has your identity
  --seed        restore an identity from its backup seed (64 hexadecimal
                characters), read from the terminal without echo, or from
                standard input:  sessionctl keygen --seed < seed.txt
                The seed is never taken from the command line, where shell
                history and process listings would keep it.
  --force       replace an existing identity file (its identity is lost
                unless you kept its seed)
`
	},
	"whoami": func() string {
		return `Usage: sessionctl whoami

Prints your Session ID (from the identity file, no passphrase needed) and
whether the node knows it.
`
	},
	"register": func() string {
		return `Usage: sessionctl register

Publishes your identity's public keys on the chain, so that others can start
sessions with you. If the identity is already registered with the same keys,
says so and exits 0.
`
	},
	"session": func() string {
		return `Usage: sessionctl session create --with ID [--with ID ...] [--metadata TEXT]
       sessionctl session show SESSION

'sessionctl session create --help' and 'sessionctl session show --help' explain each.
`
	},
	"session create": func() string {
		return fmt.Sprintf(`Usage: sessionctl session create --with ID [--with ID ...] [--metadata TEXT]

Opens a session (a conversation) between you and the people named by --with:
their Session IDs (66 characters starting with 07), registered on the chain,
at most %d others. Prints the new session's ID (CB58), which send, read and
close take. --metadata is stored in the clear (at most %s bytes).
`, config.MaxParticipants-1, commas(config.MaxMetadataSize))
	},
	"session show": func() string {
		return `Usage: sessionctl session show SESSION

Prints a session's participants, status (active, closed or expired), creation
and expiry times and message count. SESSION is a session ID (CB58).
`
	},
	"send": func() string {
		return "Usage: sessionctl send SESSION (TEXT | - | --file FILE)\n\n" +
			"Seals a message to every participant of the session (you included, so your\n" +
			"own history reads back), signs it and sends it. SESSION is a session ID\n" +
			"(CB58), not a Session ID.\n\n" + textInput + "\n" + sizeLimits()
	},
	"read": func() string {
		return `Usage: sessionctl read SESSION [--after SEQ] [--limit N]

Fetches the messages of a session, opens each with your identity and checks
who sent it. --after skips messages up to sequence number SEQ; --limit N
(at most 1000, default 100) bounds the page. With --json, "next" is the
cursor for the following page.
`
	},
	"inbox": func() string {
		return `Usage: sessionctl inbox [--after POS] [--limit N]

Fetches every message others sent to you, across your sessions, in chain
order, and opens each. --after POS continues after a position ("next" in
--json output).
`
	},
	"close": func() string {
		return `Usage: sessionctl close SESSION

Closes a session you take part in; nothing more can be sent to it.
`
	},
	"channel": func() string {
		return `Usage: sessionctl channel create NAME
       sessionctl channel join CHANNEL | leave CHANNEL | show CHANNEL
       sessionctl channel post CHANNEL (TEXT | - | --file FILE)
       sessionctl channel read CHANNEL [--after SEQ] [--limit N]

'sessionctl channel SUBCOMMAND --help' explains each.
`
	},
	"channel create": func() string {
		return fmt.Sprintf(`Usage: sessionctl channel create NAME

Creates a channel you own, named NAME (1 to %d bytes of UTF-8, no control
characters), and prints its ID (CB58).
`, config.MaxChannelNameSize)
	},
	"channel join": func() string {
		return "Usage: sessionctl channel join CHANNEL\n\nJoins a channel (any registered identity may).\n"
	},
	"channel leave": func() string {
		return "Usage: sessionctl channel leave CHANNEL\n\nLeaves a channel (its owner cannot).\n"
	},
	"channel show": func() string {
		return "Usage: sessionctl channel show CHANNEL\n\nPrints a channel's name, owner and members.\n"
	},
	"channel post": func() string {
		return "Usage: sessionctl channel post CHANNEL (TEXT | - | --file FILE)\n\n" +
			"Seals a message to every current member of the channel (you included) and\n" +
			"posts it; members who join later cannot read it.\n\n" + textInput + "\n" +
			fmt.Sprintf("The limits of 'sessionctl send --help' apply with members for participants:\n"+
				"a post to %d members carries at most %s bytes of text, and a channel of\n"+
				"more than %d members cannot be posted to this way.\n",
				10, commas(int64(maxSealedText(10))), maxSealedRecipients())
	},
	"channel read": func() string {
		return "Usage: sessionctl channel read CHANNEL [--after SEQ] [--limit N]\n\nFetches, opens and verifies the posts of a channel.\n"
	},
	"status": func() string {
		return "Usage: sessionctl status\n\nPrints the node's chain ID, height, mempool and counts.\n"
	},
	"tx": func() string {
		return `Usage: sessionctl tx [--nonce N] [--chain-id ID] [--anchor HEIGHT:BLOCKID] COMMAND [arguments]

Prints the signed transaction a write command would send, base64-encoded on
one line, without sending it (with --json: the transaction, its ID, type,
author, nonce and the session or channel it creates). Submit it with any
JSON-RPC client, e.g. session.issueTx {"tx": "..."} (docs/api.md).

COMMAND is one of: register; session create ...; send ...; close ...;
channel create | join | leave | post ... (the arguments of the command).

  --nonce N       sign with nonce N instead of asking the node for your next
                  one (to prepare several transactions ahead)
  --chain-id ID   sign for chain ID instead of asking the node (with --nonce,
                  close and channel create/join/leave need no node)
  --anchor H:ID   bind a registration's proof of work to block ID at height H
                  (a recent block: 'sessionctl status --json' prints height and
                  lastAcceptedID); with --chain-id, register needs no node
                  (at the default work parameters)

Without --nonce each call asks the node for your next nonce, so two
transactions printed before either is sent carry the same one, and only the
first sent is accepted: pass --nonce to prepare several.
`
	},
}

// helpFor returns the usage of a command ("send", "session create"), or
// "" if there is none.
func helpFor(name string) string {
	if f, ok := commandHelp[name]; ok {
		return f()
	}
	return ""
}
