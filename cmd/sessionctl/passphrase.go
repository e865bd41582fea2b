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
}

// get returns the passphrase; confirm asks twice (for new files).
func (p *passphraseSource) get(prompt string, confirm bool) (string, error) {
	if v := p.getenv(envPassphrase); v != "" {
		return v, nil
	}
	pass, err := p.prompt(prompt)
	if err != nil {
		return "", err
	}
	if pass == "" {
		return "", errors.New("empty passphrase")
	}
	if confirm {
		again, err := p.prompt("Repeat passphrase: ")
		if err != nil {
			return "", err
		}
		if again != pass {
			return "", errors.New("passphrases do not match")
		}
	}
	return pass, nil
}

func (p *passphraseSource) prompt(prompt string) (string, error) {
	f, ok := p.stdin.(*os.File)
	if !ok || !isTerminal(f) {
		return "", errNoPassphrase
	}
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
		return "", fmt.Errorf("reading passphrase: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
