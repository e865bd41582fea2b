package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// envPassphrase is read instead of prompting, for scripts.
const envPassphrase = "SESSION_PASSPHRASE"

// errNoPassphrase is returned when no passphrase can be had: no env var and
// no terminal to ask on.
var errNoPassphrase = errors.New("no passphrase: set " + envPassphrase + " or run in a terminal")

// passphraseSource reads passphrases from the environment or a terminal.
type passphraseSource struct {
	stdin  io.Reader
	stderr io.Writer
	getenv func(string) string
	// openTTY opens the controlling terminal, for prompting when standard
	// input is taken (send SESSION - < file). Nil: no terminal.
	openTTY func() (*os.File, error)
}

// get returns the passphrase; confirm asks twice (for new files).
func (p *passphraseSource) get(prompt string, confirm bool) (string, error) {
	if v := p.getenv(envPassphrase); v != "" {
		return v, nil
	}
	f, done, err := p.terminal()
	if err != nil {
		return "", err
	}
	defer done()
	pass, err := p.promptOn(f, prompt)
	if err != nil {
		return "", err
	}
	if pass == "" {
		return "", errors.New("empty passphrase")
	}
	if confirm {
		again, err := p.promptOn(f, "Repeat passphrase: ")
		if err != nil {
			return "", err
		}
		if again != pass {
			return "", errors.New("passphrases do not match")
		}
	}
	return pass, nil
}

// terminal returns the terminal to prompt on: standard input if it is one,
// else the controlling terminal (/dev/tty), as ssh and gpg do.
func (p *passphraseSource) terminal() (*os.File, func(), error) {
	if f, ok := p.stdin.(*os.File); ok && isTerminal(f) {
		return f, func() {}, nil
	}
	if p.openTTY != nil {
		if f, err := p.openTTY(); err == nil {
			if isTerminal(f) {
				return f, func() { f.Close() }, nil
			}
			f.Close()
		}
	}
	return nil, nil, errNoPassphrase
}

// promptOn writes prompt to stderr and reads one line from the terminal f
// with echo off.
func (p *passphraseSource) promptOn(f *os.File, prompt string) (string, error) {
	fmt.Fprint(p.stderr, prompt)
	restore, err := disableEcho(f)
	if err == nil {
		defer func() {
			restore()
			fmt.Fprintln(p.stderr)
		}()
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("reading from the terminal: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func openControllingTTY() (*os.File, error) { return os.OpenFile("/dev/tty", os.O_RDWR, 0) }
