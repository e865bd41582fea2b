// Command sessionctl is the SessionVM command-line client: it keeps a
// passphrase-protected identity, signs transactions locally and talks to a
// node (sessiond, or a Lux node running the plugin) over JSON-RPC.
//
// Usage:
//
//	sessionctl [flags] <command> [arguments]
//
// Run "sessionctl help" for the commands.
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

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
)

const (
	defaultNode = "http://127.0.0.1:9652/rpc"
	envNode     = "SESSION_NODE"
	envIdentity = "SESSION_IDENTITY"
)

const usage = `sessionctl: post-quantum private messaging on a SessionVM chain

Usage: sessionctl [flags] <command> [arguments]

Identity (local, no node needed):
  keygen [--seed HEX] [--force] [--print-seed]   create the identity file (or restore it from a seed)
  whoami                                         print your Session ID

Chain:
  register                                       publish your identity on the chain
  session create --with ID [--with ID ...] [--metadata TEXT]
  session show SESSION                           participants, status, expiry
  send SESSION TEXT                              seal TEXT to every participant (you included) and send it
  read SESSION [--after SEQ] [--limit N]         fetch, open and verify the messages of a session
  inbox [--after POS] [--limit N]                everything addressed to you, across sessions
  close SESSION
  channel create NAME | join CHANNEL | leave CHANNEL | show CHANNEL
  channel post CHANNEL TEXT                      seal TEXT to every current member and post it
  channel read CHANNEL [--after SEQ] [--limit N]
  status                                         the node's chain status

Flags:
  --node URL        JSON-RPC endpoint (env SESSION_NODE, default ` + defaultNode + `)
  --identity FILE   identity file (env SESSION_IDENTITY, default ~/.sessionctl/identity.json)
  --json            machine-readable output
  --timeout D       how long to wait for the node, including acceptance (default 60s)
  --no-wait         return once the node admits a transaction, without waiting for its block

The passphrase is read from SESSION_PASSPHRASE, or asked for on the terminal.
`

// env is what a run of the CLI reads and writes, so that tests can drive it.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func main() {
	os.Exit(run(os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
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
	if len(rest) == 0 || rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help" {
		fmt.Fprint(e.stdout, usage)
		if len(rest) == 0 {
			return 2
		}
		return 0
	}
	c.pass = passphraseSource{stdin: e.stdin, stderr: e.stderr, getenv: e.getenv}
	c.client = service.NewClient(c.node, service.WithTimeout(c.timeout), service.WithWaitTimeout(c.timeout))

	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	err := c.dispatch(ctx, rest[0], rest[1:])
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "sessionctl: %v (see 'sessionctl help')\n", err)
		return 2
	}
	fmt.Fprintf(e.stderr, "sessionctl: %s\n", c.explain(err))
	return 1
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
		if len(args) == 0 {
			return usageError{"session: want create or show"}
		}
		switch args[0] {
		case "create":
			return c.sessionCreate(ctx, args[1:])
		case "show":
			return c.sessionShow(ctx, args[1:])
		}
		return usageError{"session: unknown subcommand " + args[0]}
	case "send":
		return c.send(ctx, args)
	case "read":
		return c.read(ctx, args)
	case "inbox":
		return c.inbox(ctx, args)
	case "close":
		return c.closeSession(ctx, args)
	case "channel":
		return c.channel(ctx, args)
	case "status":
		return c.status(ctx, args)
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
	case errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("node unreachable at %s: %v", c.node, err)
	}
	if code, ok := service.CodeOf(err); ok {
		switch code {
		case service.CodeUnknownSession:
			return "unknown session: " + err.Error()
		case service.CodeUnknownIdentity:
			return "unknown identity (not registered on this chain): " + err.Error()
		case service.CodeNotParticipant:
			return "not a participant: " + err.Error()
		}
	}
	return err.Error()
}

// Global flags and whether each takes a value.
var globalFlags = map[string]bool{"node": true, "identity": true, "timeout": true, "json": false, "no-wait": false}

// splitGlobalFlags takes the global flags out of args wherever they stand
// ("sessionctl send S hi --json" as well as "sessionctl --json send S hi").
// Everything after "--" is left alone, so a message may start with "--".
func splitGlobalFlags(args []string) (globals, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue, ok := globalFlags[name]
		if !strings.HasPrefix(a, "-") || !ok {
			rest = append(rest, a)
			continue
		}
		globals = append(globals, a)
		if takesValue && !hasValue && i+1 < len(args) {
			i++
			globals = append(globals, args[i])
		}
	}
	return globals, rest
}

// parseFlags parses a subcommand's flags, allowing flags after positional
// arguments ("send S text --no-wait" as well as "--flag x S").
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
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
