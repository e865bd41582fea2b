package main

import (
	"fmt"
	"strings"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/service"
)

// usage is the overview "sessionctl help" prints.
var usage = `sessionctl: post-quantum private messaging on a SessionVM chain

Usage: sessionctl [flags] <command> [arguments]

Identity (local, no node needed):
  keygen [--seed] [--force] [--print-seed]       create the identity file (or restore it from its backup seed)
  whoami                                         print your Session ID

Sessions (forward secrecy: keys are deleted once used, your history is kept in your archive):
  register                                       publish your identity and your prekeys on the chain
  session create --with ID [--with ID ...] [--metadata TEXT]
  session list [--after POS] [--limit N]         the sessions you created or accepted
  session show SESSION                           participants (as the creator signed them), status, expiry
  send SESSION (TEXT | - | --file FILE)          encrypt a message for every participant and send it
  resend SESSION                                 send what your outbox still holds (after a crash, a node down)
  read SESSION [--after SEQ] [--limit N]         fetch, verify and open the messages of a session
  inbox [--after POS] [--limit N]                everything sent to you, across your sessions
  history SESSION                                your archive of a session: what you sent and read
  close SESSION
  requests [--after POS] [--limit N]             sessions strangers started with you, waiting for an answer
  requests policy (anyone | contacts)            who may send you message requests
  accept SESSION | decline SESSION               answer a request (decline also leaves an accepted session)
  contact show ID | add ID | remove ID           contacts skip the request step (contact lists are public)
  block ID | unblock ID                          a blocked identity cannot add you to sessions
  prekeys [replenish]                            your prekeys on chain and on this device; publish more

Channels (Seal: no forward secrecy):
  channel create NAME [--invite-only] | join CHANNEL | leave CHANNEL | show CHANNEL
  channel post CHANNEL (TEXT | - | --file FILE)  seal a message to every current member and post it
  channel read CHANNEL [--after SEQ] [--limit N]
  channel policy CHANNEL (open | invite-only)
  channel invite | uninvite | remove | ban | unban CHANNEL ID [ID ...]
  channel moderator CHANNEL (add | remove) ID [ID ...]
  channel delete CHANNEL SEQ [SEQ ...]

Other:
  tx [--nonce N] [--chain-id ID] [--anchor H:ID] COMMAND ...  print a write command's signed transaction instead of sending it
  status                                         the node's chain status

Flags:
  --node URL        JSON-RPC endpoint (env SESSION_NODE, default ` + defaultNode + `)
  --identity FILE   identity file (env SESSION_IDENTITY, default ~/.sessionctl/identity.json);
                    its message store is the directory FILE.chat beside it
  --json            machine-readable output
  --timeout D       how long to wait for the node, including acceptance (default 60s)
  --no-wait         return once the node admits a transaction, without waiting for its block

Two kinds of ID: a Session ID names a person (an identity: 66 characters
starting with 07, as 'whoami' prints it); a session ID names a conversation
(CB58, as 'session create' prints it). Channels have CB58 IDs too.

The passphrase is read from SESSION_PASSPHRASE, or asked for on the terminal;
it opens the identity file and the message store.
'sessionctl COMMAND --help' (or 'sessionctl help COMMAND') explains a command.
`

// sizeLimits is the message size paragraph of send's help.
func sizeLimits() string {
	return fmt.Sprintf("A message carries at most %s bytes of text, with 2 participants as with %d\n"+
		"(the most a session has): the protocol bounds the text so that a message that\n"+
		"starts a new ratchet step with every other participant still fits the chain's\n"+
		"limit of %s bytes per message. A message that starts conversations with\n"+
		"many participants at once goes out as more than one transaction (setup\n"+
		"messages first). A longer text is refused before anything is encrypted, signed\n"+
		"or sent: \"message is 70,000 bytes; at most %s with 2 participants\".\n",
		commas(int64(maxText(2))), config.MaxParticipants, commas(config.MaxCiphertextSize), commas(int64(maxText(2))))
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

Publishes your identity's public keys on the chain (solving the chain's
registration proof of work, about a second of one core), then your prekeys:
a signed prekey and one-time prekeys, which others need to start a session
with you. Their secrets stay in your message store. If the identity is
already registered with the same keys, says so and publishes only the
prekeys that are missing (none: "nothing to do"); it exits 0 either way.
`
	},
	"session": func() string {
		return `Usage: sessionctl session create --with ID [--with ID ...] [--metadata TEXT]
       sessionctl session list [--after POS] [--limit N]
       sessionctl session show SESSION

'sessionctl session SUBCOMMAND --help' explains each.
`
	},
	"session create": func() string {
		return fmt.Sprintf(`Usage: sessionctl session create --with ID [--with ID ...] [--metadata TEXT]

Opens a session (a conversation) between you and the people named by --with:
their Session IDs (66 characters starting with 07), registered on the chain,
at most %d others. Prints the new session's ID (CB58), which send, read and
close take. --metadata is stored in the clear (at most %s bytes).

Each participant's prekeys are fetched and checked against the transactions
they signed (a node cannot substitute keys), and one one-time prekey of each
is claimed on chain in the same transaction. People who do not have you as a
contact receive the session as a message request ('sessionctl requests').
`, config.MaxParticipants-1, commas(config.MaxMetadataSize))
	},
	"session list": func() string {
		return `Usage: sessionctl session list [--after POS] [--limit N]

Lists the sessions you created or accepted, oldest first, with their
participants (checked against the creator's signed transaction), status and
how many messages you have not read. --after continues after a position
("next" in --json output). Message requests are listed by 'sessionctl requests'.
`
	},
	"session show": func() string {
		return `Usage: sessionctl session show SESSION

Prints a session's participants (checked against the creator's signed
transaction) and their states (accepted, pending, left), its status (active,
closed or expired), creation and expiry times, message count and how far you
have read it. SESSION is a session ID (CB58).
`
	},
	"send": func() string {
		return "Usage: sessionctl send SESSION (TEXT | - | --file FILE)\n\n" +
			"Encrypts a message for every other participant of the session with the\n" +
			"forward-secret protocol, signs it and sends it, then waits for its block.\n" +
			"The session's new messages are read first (the keys move on with them), and\n" +
			"what your outbox still holds from an earlier run goes out first, as the same\n" +
			"transactions. A transaction the chain refuses for a reason that passes (a\n" +
			"prekey someone else claimed first) is sent again with fresh keys. Your\n" +
			"message stays readable to you in your archive ('sessionctl history').\n" +
			"SESSION is a session ID (CB58), not a Session ID.\n\n" + textInput + "\n" + sizeLimits()
	},
	"read": func() string {
		return `Usage: sessionctl read SESSION [--after SEQ] [--limit N]

Fetches the messages of a session, checks each against its signed
transaction, opens it and checks who sent it. A message is opened once: its
keys are then deleted (forward secrecy) and it is shown again from your
archive. Messages from before the protocol (sealed, without forward
secrecy) are shown marked as such. --after skips messages up to sequence
number SEQ; --limit N (at most 1000, default 100) bounds the page. With
--json, "next" is the cursor for the following page.

A node that lies is caught: a message whose ciphertext or author is not
what its signed transaction says is shown with an error and not opened; a
replayed one is refused; one the node held back opens once it is served.
If you only read in a session, then after 50 messages or a day since you
last wrote, read sends a ratchet message (a transaction without content)
so that the others' next messages use fresh keys of yours: the
conversation heals after a compromise.
`
	},
	"history": func() string {
		return `Usage: sessionctl history SESSION

Prints your archive of a session: the messages you sent and read, kept in
your message store (encrypted under your passphrase). The chain's copies of
these messages cannot be opened again, by you or by anyone who later steals
your keys: the archive is what keeps your history.
`
	},
	"resend": func() string {
		return `Usage: sessionctl resend SESSION

Sends what your outbox holds for a session: messages encrypted by an earlier
send that did not reach the chain (the process was killed, the node was
unreachable or busy). Each goes out as the transaction signed for it, so it
never lands twice; one that can no longer land is encrypted again with fresh
keys. 'sessionctl send' does this first on its own.
`
	},
	"inbox": func() string {
		return `Usage: sessionctl inbox [--after POS] [--limit N]

Fetches every message others sent to you, across the sessions you accepted,
in chain order, and opens and checks each as 'read' does. --after POS
continues after a position ("next" in --json output). Requests are not in
the inbox until you accept them. Like read, it may send a ratchet message
in a session you only read.
`
	},
	"requests": func() string {
		return `Usage: sessionctl requests [--after POS] [--limit N]
       sessionctl requests policy (anyone | contacts)

Lists your message requests: sessions people who are not your contacts
created with you, one per creator, in the order they were created.
'sessionctl read SESSION' shows what they wrote; 'accept' or 'decline'
answers, 'block ID' blocks the creator. --after continues after the
position a previous page gave as "next".

requests policy sets who may send you message requests: anyone registered,
or only your contacts (everybody else's new sessions with you are refused).
Your policy is public on chain.
`
	},
	"accept": func() string {
		return `Usage: sessionctl accept SESSION

Accepts a session (a message request): its messages reach your inbox from now
on, its first few at once. Replying in it accepts it too.
`
	},
	"decline": func() string {
		return `Usage: sessionctl decline SESSION

Declines a message request, or leaves a session you accepted: its messages no
longer reach your inbox and you can no longer send to it (accepting later
brings you back).
`
	},
	"contact": func() string {
		return `Usage: sessionctl contact show ID
       sessionctl contact add ID
       sessionctl contact remove ID

Your contacts' sessions with you skip the request step, and they may claim
the one-time prekeys kept for contacts. ID is a Session ID. Contact lists are
public on the chain.
`
	},
	"contact show": func() string {
		return "Usage: sessionctl contact show ID\n\nPrints your status for ID: none, contact or blocked.\n"
	},
	"contact add": func() string {
		return "Usage: sessionctl contact add ID\n\nMakes ID (a Session ID) your contact (public on the chain).\n"
	},
	"contact remove": func() string {
		return "Usage: sessionctl contact remove ID\n\nRemoves ID from your contacts (or unblocks it).\n"
	},
	"block": func() string {
		return `Usage: sessionctl block ID

Blocks ID (a Session ID): it can no longer add you to sessions or claim your
prekeys, and its pending request goes. Sessions you already accepted with it
stay: leave them with 'sessionctl decline SESSION'. Blocks are public.
`
	},
	"unblock": func() string {
		return "Usage: sessionctl unblock ID\n\nRemoves the block on ID.\n"
	},
	"prekeys": func() string {
		return fmt.Sprintf(`Usage: sessionctl prekeys [replenish]
       sessionctl tx [--nonce N] prekeys replenish [--one-time N]

Prints your prekeys: the signed prekey on chain and its expiry, how many
one-time prekeys are left unclaimed on chain, and how many secrets this
device holds. With replenish, publishes what is missing: a new signed prekey
when it expires within %d days or is not this device's, and one-time prekeys
up to %d when fewer than %d are left. send, read and inbox do this on their
own at most once an hour (and when a conversation used one of yours).

'sessionctl tx prekeys replenish' prints the PublishPrekeys transactions
replenish would send (one per line, to submit in that order) instead of
sending them. The keys are made from your identity's message store, which
keeps their secrets as replenish does, so the published prekeys are usable
by this device; transactions you never submit leave secrets nobody claims
(the next replenish publishes new keys above them). --one-time N publishes
at most N one-time prekeys (up to %d fit in one transaction).
`, int(service.SignedPrekeyRenewal.Hours()/24), service.PrekeyTarget, service.PrekeyLowWater, config.MaxPrekeysPerTx)
	},
	"close": func() string {
		return `Usage: sessionctl close SESSION

Closes a session you take part in; nothing more can be sent to it.
`
	},
	"channel": func() string {
		return `Usage: sessionctl channel create NAME [--invite-only]
       sessionctl channel join CHANNEL | leave CHANNEL | show CHANNEL
       sessionctl channel post CHANNEL (TEXT | - | --file FILE)
       sessionctl channel read CHANNEL [--after SEQ] [--limit N]
       sessionctl channel policy CHANNEL (open | invite-only)
       sessionctl channel invite | uninvite | remove | ban | unban CHANNEL ID [ID ...]
       sessionctl channel moderator CHANNEL (add | remove) ID [ID ...]
       sessionctl channel delete CHANNEL SEQ [SEQ ...]

Channels (up to 1,024 members) use Seal, without forward secrecy: a post is
sealed to the members of the moment. 'sessionctl channel SUBCOMMAND --help'
explains each.
`
	},
	"channel create": func() string {
		return fmt.Sprintf(`Usage: sessionctl channel create NAME [--invite-only]

Creates a channel you own, named NAME (1 to %d bytes of UTF-8, no control
characters), and prints its ID (CB58). Anyone may join an open channel; with
--invite-only, only those you or your moderators invite.
`, config.MaxChannelNameSize)
	},
	"channel policy": func() string {
		return "Usage: sessionctl channel policy CHANNEL (open | invite-only)\n\n" +
			"Sets who may join your channel (the owner only). Members stay members.\n"
	},
	"channel invite": func() string {
		return moderationHelp("invite", "lets each ID join the channel once (needed when it is invite-only)")
	},
	"channel uninvite": func() string {
		return moderationHelp("uninvite", "revokes invites not yet used")
	},
	"channel remove": func() string {
		return moderationHelp("remove", "removes members (they may rejoin as the policy allows)")
	},
	"channel ban": func() string {
		return moderationHelp("ban", "removes members and keeps them out (no join, no invite)")
	},
	"channel unban": func() string {
		return moderationHelp("unban", "lifts bans (membership is not restored)")
	},
	"channel moderator": func() string {
		return fmt.Sprintf(`Usage: sessionctl channel moderator CHANNEL (add | remove) ID [ID ...]

Makes members moderators, or takes the role back (the owner only); up to %d
IDs per transaction. Moderators invite, remove, ban and unban members and
delete posts.
`, config.MaxModerationItems)
	},
	"channel delete": func() string {
		return fmt.Sprintf(`Usage: sessionctl channel delete CHANNEL SEQ [SEQ ...]

Deletes posts by sequence number (as 'channel read' shows them), up to %d per
transaction: any post for the owner and moderators, your own for anyone.
`, config.MaxDeleteItems)
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
		var b strings.Builder
		b.WriteString("Usage: sessionctl channel post CHANNEL (TEXT | - | --file FILE)\n\n" +
			"Seals a message (Seal: no forward secrecy) to every current member of the\n" +
			"channel, you included, and posts it; members who join later cannot read it.\n\n" + textInput + "\n")
		fmt.Fprintf(&b, "Sealing adds a fixed part and a part per member to the text, and the chain takes\n"+
			"at most %s bytes per post, so the text can be at most:\n", commas(config.MaxCiphertextSize))
		for _, n := range []int{2, 10, 20, 50} {
			fmt.Fprintf(&b, "  %2d members: %7s bytes\n", n, commas(int64(maxSealedText(n))))
		}
		fmt.Fprintf(&b, "A channel of more than %d members cannot be posted to this way.\n", maxSealedRecipients())
		return b.String()
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
accept ...; decline ...; contact add | remove ...; block ...; unblock ...;
requests policy ...; prekeys replenish; channel create | join | leave |
post | policy | invite | uninvite | remove | ban | unban | moderator |
delete ... (the arguments of the command).

session create and send use the protocol: they need the node (for the
participants' verified keys), prepare the conversation in your message store
and keep the printed transactions in your outbox until they are seen on chain
(a later send or resend submits them if you did not). A send that needs more
than one transaction prints one per line, to submit in that order.

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

// moderationHelp is the usage of a channel moderation subcommand.
func moderationHelp(sub, what string) string {
	return fmt.Sprintf("Usage: sessionctl channel %s CHANNEL ID [ID ...]\n\n"+
		"The channel's owner or a moderator %s; up to %d IDs (Session IDs) per\n"+
		"transaction.\n", sub, what, config.MaxModerationItems)
}

// helpFor returns the usage of a command ("send", "session create"), or
// "" if there is none.
func helpFor(name string) string {
	if f, ok := commandHelp[name]; ok {
		return f()
	}
	return ""
}
