package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
)

// maxInputBytes bounds what sessionctl reads from standard input or a file
// as one message: well above what any message can carry, so that a too
// large message is reported with its size, and small enough that reading
// it costs nothing.
const maxInputBytes = 1 << 20

// messageText is the text of a message and where it came from.
type messageText struct {
	text []byte
	size int64 // bytes of the whole input, when known
	cut  bool  // the input went on beyond maxInputBytes: text holds the start
	from string
}

// readMessage returns the text of send and channel post: the TEXT
// argument, standard input when it is "-", or the file of --file. From
// standard input and files one trailing newline is dropped (an editor or
// "echo" adds it). An empty message, or one of whitespace only, is
// refused: it would show as a blank line.
func (c *cli) readMessage(cmd string, positional []string, file string) (*messageText, error) {
	var m messageText
	switch {
	case file != "" && len(positional) > 0:
		return nil, usageError{cmd + ": give the text as an argument, as - (standard input) or with --file, not several"}
	case file != "":
		m.from = file
		st, err := os.Stat(file)
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() && st.Mode()&os.ModeNamedPipe == 0 {
			return nil, fmt.Errorf("%s: not a regular file", file)
		}
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := m.readFrom(f); err != nil {
			return nil, fmt.Errorf("reading %s: %w", file, err)
		}
		if m.cut && st.Mode().IsRegular() {
			m.size = st.Size() // known without reading it all
		} else if m.cut {
			m.size = -1
		}
	case len(positional) == 1 && positional[0] == "-":
		m.from = "standard input"
		if err := m.readFrom(c.stdin); err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		if m.cut {
			m.size = -1 // unknown: more than maxInputBytes
		}
	case len(positional) == 1:
		m.from = "the command line"
		m.text = []byte(positional[0])
		m.size = int64(len(m.text))
		return &m, m.checkNotEmpty(cmd)
	case len(positional) == 0:
		return nil, usageError{cmd + ": no text: give it as an argument, as - to read standard input, or with --file FILE"}
	default:
		return nil, usageError{fmt.Sprintf("%s: %d words of text: quote the text as one argument (\"...\"), or use - or --file", cmd, len(positional))}
	}
	if !m.cut {
		m.text = trimOneNewline(m.text)
		m.size = int64(len(m.text))
	}
	return &m, m.checkNotEmpty(cmd)
}

func (m *messageText) readFrom(r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, maxInputBytes+1))
	if err != nil {
		return err
	}
	m.text, m.size = b, int64(len(b))
	if len(b) > maxInputBytes {
		m.text, m.cut = b[:maxInputBytes], true
	}
	return nil
}

func (m *messageText) checkNotEmpty(cmd string) error {
	if len(bytes.TrimSpace(m.text)) == 0 {
		what := "empty"
		if len(m.text) > 0 {
			what = "only whitespace"
		}
		return usageError{fmt.Sprintf("%s: the message (from %s) is %s: nothing to send", cmd, m.from, what)}
	}
	return nil
}

// checkSize refuses a text longer than max bytes, before anything is
// signed, in terms of the text: "message is 70,000 bytes; at most 56,735
// with 2 participants".
func (m *messageText) checkSize(max, recipients int, who string) error {
	if m.size <= int64(max) && !m.cut {
		return nil
	}
	size := "is " + commas(m.size) + " bytes"
	if m.size < 0 {
		size = "is more than " + commas(maxInputBytes) + " bytes"
	}
	if max < 1 {
		return fmt.Errorf("message %s, and no message fits: a message is sealed to each of the %s %s and at most %s fit (the chain limits a ciphertext to %s bytes)",
			size, commas(int64(recipients)), who, commas(int64(maxSealedRecipients())), commas(config.MaxCiphertextSize))
	}
	return fmt.Errorf("message %s; at most %s with %d %s", size, commas(int64(max)), recipients, who)
}

func trimOneNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// commas formats n with thousands separators: 56735 -> "56,735".
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// errSeedOnCommandLine refuses a seed given as an argument; the message
// never repeats the argument.
var errSeedOnCommandLine = usageError{"keygen: the backup seed is not taken from the command line, where shell history and " +
	"process listings keep it: run 'sessionctl keygen --seed' and type it when asked, or pass it on standard input " +
	"(sessionctl keygen --seed < seed.txt)"}

// readSeed reads a 64-hex-character backup seed from the terminal (not
// echoed) or, when standard input is not a terminal, from standard input.
// Whitespace anywhere in it is ignored. Errors never contain the input.
func (c *cli) readSeed() ([crypto.SeedSize]byte, error) {
	var seed [crypto.SeedSize]byte
	var line string
	if f, ok := c.stdin.(*os.File); ok && isTerminal(f) {
		s, err := c.pass.promptOn(f, "Backup seed (64 hexadecimal characters): ")
		if err != nil {
			return seed, err
		}
		line = s
	} else {
		b, err := io.ReadAll(io.LimitReader(bufio.NewReader(c.stdin), 4096))
		if err != nil {
			return seed, fmt.Errorf("reading the seed from standard input: %w", err)
		}
		line = string(b)
	}
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, line)
	if clean == "" {
		return seed, usageError{"keygen --seed: no seed given (type it when asked, or pass it on standard input)"}
	}
	b, err := hex.DecodeString(clean)
	if err != nil || len(b) != crypto.SeedSize {
		return seed, usageError{fmt.Sprintf("keygen --seed: the seed must be %d hexadecimal characters (got %d characters)", 2*crypto.SeedSize, len(clean))}
	}
	copy(seed[:], b)
	clear(b)
	return seed, nil
}

// looksLikeSeed reports whether an argument could be a backup seed (so
// that keygen refuses it without echoing it).
func looksLikeSeed(s string) bool {
	s = strings.TrimSpace(s)
	if len(s) < 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil || errors.Is(err, hex.ErrLength)
}
