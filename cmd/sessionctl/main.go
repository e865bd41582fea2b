// Command sessionctl is the SessionVM command-line client: it keeps a
// passphrase-protected identity, signs transactions locally and talks to a
// node (sessiond, or a Lux node running the plugin) over JSON-RPC.
//
// Usage:
//
//	sessionctl [flags] <command> [arguments]
//
// Run "sessionctl help" for the commands and "sessionctl COMMAND --help"
// for one of them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
)

const (
	defaultNode = "http://127.0.0.1:9652/rpc"
	envNode     = "SESSION_NODE"
	envIdentity = "SESSION_IDENTITY"
)

// env is what a run of the CLI reads and writes, so that tests can drive it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	openTTY        func() (*os.File, error) // the controlling terminal; nil: none
}

func main() {
	os.Exit(run(os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, openTTY: openControllingTTY}))
}

// cli holds the global options of one run.
type cli struct {
	env
	node     string
	idPath   string
	json     bool
	timeout  time.Duration
	noWait   bool
	pass     passphraseSource
	client   *service.Client
	identity *crypto.Identity // loaded on first use
	passphr  string           // its passphrase, which also opens the message store

	// m is the messaging client of the identity (its store beside the
	// identity file), opened on first use and closed at the end of the run.
	m *service.Messenger

	// printTx: the write commands print their signed transaction instead
	// of sending it ("sessionctl tx ..."), with these overrides.
	printTx   bool
	txNonce   *uint64
	txChainID *ids.ID
	txAnchor  *service.Anchor // tx --anchor: a registration's anchor block
}

// usageError is reported with exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(args []string, e env) int {
	c := &cli{env: e}
	fs := flag.NewFlagSet("sessionctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.node, "node", firstNonEmpty(e.getenv(envNode), defaultNode), "")
	fs.StringVar(&c.idPath, "identity", firstNonEmpty(e.getenv(envIdentity), defaultIdentityPath(e.getenv)), "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "")
	fs.BoolVar(&c.noWait, "no-wait", false, "")
	globals, rest := splitGlobalFlags(args)
	if err := fs.Parse(globals); err != nil {
		fmt.Fprintf(e.stderr, "sessionctl: %v\n\n%s", err, usage)
		return 2
	}
	if len(rest) == 0 {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	switch rest[0] {
	case "help", "-h", "-help", "--help":
		return c.help(rest[1:])
	}
	c.pass = passphraseSource{stdin: e.stdin, stderr: e.stderr, getenv: e.getenv, openTTY: e.openTTY}
	c.client = service.NewClient(c.node, service.WithTimeout(c.timeout), service.WithWaitTimeout(c.timeout))

	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	err := c.dispatch(ctx, rest[0], rest[1:])
	if c.m != nil {
		if cerr := c.m.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		return 0
	}
	var hr helpRequested
	if errors.As(err, &hr) {
		return c.help(strings.Fields(hr.cmd))
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "sessionctl: %v (see 'sessionctl help')\n", err)
		return 2
	}
	fmt.Fprintf(e.stderr, "sessionctl: %s\n", c.explain(err))
	return 1
}

// help prints the overview, or the usage of the command named by words
// ("send", "session create"), on stdout.
func (c *cli) help(words []string) int {
	if len(words) > 0 && words[0] == "tx" && len(words) > 1 {
		words = words[1:] // "tx send --help" explains send
	}
	if len(words) == 0 {
		fmt.Fprint(c.stdout, usage)
		return 0
	}
	name := strings.Join(words[:min(2, len(words))], " ")
	text := helpFor(name)
	if text == "" {
		text = helpFor(words[0])
	}
	if text == "" {
		fmt.Fprintf(c.stderr, "sessionctl: no command %q (see 'sessionctl help')\n", strings.Join(words, " "))
		return 2
	}
	fmt.Fprint(c.stdout, text)
	return 0
}

// group dispatches the subcommands of session, channel and tx: with no
// subcommand, or --help, it asks for the group's help.
func group(name string, args []string, subs map[string]func([]string) error) error {
	if len(args) == 0 {
		return usageError{fmt.Sprintf("%s: want a subcommand ('sessionctl %s --help' lists them)", name, name)}
	}
	if f, ok := subs[args[0]]; ok {
		return f(args[1:])
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return helpRequested{name}
	}
	return usageError{fmt.Sprintf("%s: unknown subcommand %q ('sessionctl %s --help' lists them)", name, args[0], name)}
}

func (c *cli) dispatch(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "keygen":
		return c.keygen(args)
	case "whoami":
		return c.whoami(ctx, args)
	case "register":
		return c.register(ctx, args)
	case "session":
		return group("session", args, map[string]func([]string) error{
			"create": func(a []string) error { return c.sessionCreate(ctx, a) },
			"show":   func(a []string) error { return c.sessionShow(ctx, a) },
			"list":   func(a []string) error { return c.sessionList(ctx, a) },
		})
	case "send":
		return c.send(ctx, args)
	case "resend":
		return c.resend(ctx, args)
	case "read":
		return c.read(ctx, args)
	case "inbox":
		return c.inbox(ctx, args)
	case "history":
		return c.history(ctx, args)
	case "requests":
		return c.requests(ctx, args)
	case "accept":
		return c.answer(ctx, "accept", args)
	case "decline":
		return c.answer(ctx, "decline", args)
	case "contact":
		return group("contact", args, map[string]func([]string) error{
			"show":   func(a []string) error { return c.contactShow(ctx, a) },
			"add":    func(a []string) error { return c.contactSet(ctx, "contact add", tx.ContactTrusted, a) },
			"remove": func(a []string) error { return c.contactSet(ctx, "contact remove", tx.ContactNone, a) },
		})
	case "block":
		return c.contactSet(ctx, "block", tx.ContactBlocked, args)
	case "unblock":
		return c.contactSet(ctx, "unblock", tx.ContactNone, args)
	case "prekeys":
		return c.prekeys(ctx, args)
	case "close":
		return c.closeSession(ctx, args)
	case "channel":
		return c.channel(ctx, args)
	case "status":
		return c.status(ctx, args)
	case "tx":
		return c.tx(ctx, args)
	}
	return usageError{"unknown command " + cmd}
}

// explain turns an error into one clear line for a person.
func (c *cli) explain(err error) string {
	var ue *url.Error
	var ne net.Error
	switch {
	case errors.Is(err, crypto.ErrWrongPassphrase):
		return "wrong passphrase for " + c.idPath + " (or the file was modified)"
	case errors.Is(err, os.ErrNotExist) && strings.Contains(err.Error(), c.idPath):
		return "no identity at " + c.idPath + ": run 'sessionctl keygen' first"
	case errors.Is(err, chat.ErrStoreLocked):
		return "another sessionctl is using the message store " + chat.StoreDir(c.idPath) + ": wait for it to finish"
	case errors.Is(err, chat.ErrWrongPassphrase):
		return "the message store " + chat.StoreDir(c.idPath) + " does not open with the identity file's passphrase (or was modified)"
	case errors.Is(err, service.ErrUntrustedNode), errors.Is(err, service.ErrIdentityMismatch):
		return fmt.Sprintf("the node at %s is not trustworthy: what it returned does not match what its owners signed (%v); nothing was sent", c.node, err)
	case errors.Is(err, service.ErrNoSignedPrekey):
		return fmt.Sprintf("%v: they cannot receive messages yet; they publish prekeys with 'sessionctl register'", err)
	case errors.Is(err, service.ErrPrekeyExpired):
		return fmt.Sprintf("%v: they cannot receive new conversations until they publish a new one ('sessionctl prekeys replenish', or any send or read)", err)
	case errors.Is(err, service.ErrInOutbox):
		return fmt.Sprintf("%v; the message is encrypted and waits in your outbox: 'sessionctl resend SESSION' (or your next send in that session) sends it", err)
	case errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("node unreachable at %s: %v", c.node, err)
	}
	if code, ok := service.CodeOf(err); ok {
		switch code {
		case service.CodeUnknownSession:
			return "unknown session: " + err.Error()
		case service.CodeUnknownChannel:
			return "unknown channel: " + err.Error()
		case service.CodeUnknownIdentity:
			return "unknown identity (not registered on this chain): " + err.Error()
		case service.CodeNotParticipant:
			return "not a participant: " + err.Error()
		}
	}
	return err.Error()
}

// output prints v as JSON with --json, or text otherwise.
func (c *cli) output(v any, text string) error {
	if c.json {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := io.WriteString(c.stdout, text)
	return err
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func defaultIdentityPath(getenv func(string) string) string {
	home := getenv("HOME")
	if home == "" {
		if h, err := os.UserHomeDir(); err == nil {
			home = h
		}
	}
	return filepath.Join(home, ".sessionctl", "identity.json")
}

func formatTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05Z")
}
