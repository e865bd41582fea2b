package service

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/luxfi/session/crypto"
)

// The shell side of TestDocs: docs/api.md signs its write examples with
// the sessionctl binary (TX=$(sessionctl ... tx ...)) and splices $TX into
// the curl body. This runs those lines as a shell would: sessionctl is
// built and run as a user runs it, against the test chain, and the curl
// line's -d argument is expanded with the shell's quoting rules.

// assignLine is NAME=$(sessionctl ARGS).
var assignLine = regexp.MustCompile(`^([A-Z_]+)=\$\(sessionctl (.*)\)$`)

var (
	sessionctlOnce sync.Once
	sessionctlPath string
	sessionctlErr  error
)

// sessionctlBinary builds cmd/sessionctl once per test binary.
func sessionctlBinary(t *testing.T) string {
	t.Helper()
	sessionctlOnce.Do(func() {
		dir, err := os.MkdirTemp("", "docs-sessionctl-")
		if err != nil {
			sessionctlErr = err
			return
		}
		sessionctlPath = filepath.Join(dir, "sessionctl")
		cmd := exec.Command("go", "build", "-o", sessionctlPath, "../cmd/sessionctl")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			sessionctlErr = fmt.Errorf("go build ../cmd/sessionctl: %v\n%s", err, out)
		}
	})
	if sessionctlErr != nil {
		t.Fatal(sessionctlErr)
	}
	return sessionctlPath
}

// docShell holds the variables and the working directory (with the
// identity files the examples name) of the documented shell session.
type docShell struct {
	t    *testing.T
	bin  string
	dir  string
	env  []string
	vars map[string]string
}

// newDocShell writes an identity file per name (alice.json, ...) and
// points sessionctl at the node url.
func newDocShell(t *testing.T, url string, ids map[string]*crypto.Identity) *docShell {
	t.Helper()
	sh := &docShell{t: t, bin: sessionctlBinary(t), dir: t.TempDir(), vars: map[string]string{"RPC": url}}
	sh.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + sh.dir, "SESSION_NODE=" + url, "SESSION_PASSPHRASE=docs"}
	// The files record the low scrypt work factor TestMain set (tests
	// only: see keyfiletest), so that each sessionctl run opens them quickly.
	for name, id := range ids {
		if err := id.Save(filepath.Join(sh.dir, name+".json"), "docs"); err != nil {
			t.Fatal(err)
		}
	}
	return sh
}

// assign runs NAME=$(sessionctl ARGS) and keeps stdout, without its
// trailing newlines, in NAME.
func (sh *docShell) assign(where, line string) {
	sh.t.Helper()
	m := assignLine.FindStringSubmatch(line)
	args, err := shellWords(m[2], sh.vars)
	if err != nil {
		sh.t.Fatalf("%s: %s: %v", where, line, err)
	}
	cmd := exec.Command(sh.bin, args...)
	cmd.Dir, cmd.Env = sh.dir, sh.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		sh.t.Fatalf("%s: %s: %v\n%s", where, line, err, stderr.String())
	}
	sh.vars[m[1]] = strings.TrimRight(string(out), "\n")
}

// curlBody returns the expanded argument of -d on a curl line.
func (sh *docShell) curlBody(where, line string) string {
	sh.t.Helper()
	words, err := shellWords(line, sh.vars)
	if err != nil {
		sh.t.Fatalf("%s: %s: %v", where, line, err)
	}
	for i, w := range words {
		if w == "-d" && i+1 < len(words) {
			return words[i+1]
		}
	}
	sh.t.Fatalf("%s: no -d argument in %s", where, line)
	return ""
}

// shellWords splits a command line into words as a POSIX shell does for
// the forms the docs use: blanks between words, '...' literal, "..." with
// $NAME / ${NAME} expanded and \" \\ \$ escaped, bare $NAME, and
// backslash escapes outside quotes. A variable that is not set is an
// error (the docs must define what they use), as are unterminated quotes.
func shellWords(line string, vars map[string]string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	expand := func(i int) (string, int, error) { // line[i] == '$'
		j := i + 1
		braced := j < len(line) && line[j] == '{'
		if braced {
			j++
		}
		k := j
		for k < len(line) && (line[k] == '_' || line[k] >= 'A' && line[k] <= 'Z' || line[k] >= 'a' && line[k] <= 'z' || k > j && line[k] >= '0' && line[k] <= '9') {
			k++
		}
		name := line[j:k]
		if braced {
			if k >= len(line) || line[k] != '}' {
				return "", 0, fmt.Errorf("unterminated ${ at %d", i)
			}
			k++
		}
		if name == "" {
			return "$", i + 1, nil
		}
		v, ok := vars[name]
		if !ok {
			return "", 0, fmt.Errorf("$%s is not set", name)
		}
		return v, k, nil
	}
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated ' at %d", i)
			}
			w.WriteString(line[i+1 : i+1+end])
			i += end + 2
			inWord = true
		case c == '"':
			i++
			for {
				if i >= len(line) {
					return nil, fmt.Errorf("unterminated \"")
				}
				d := line[i]
				if d == '"' {
					i++
					break
				}
				if d == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					w.WriteByte(line[i+1])
					i += 2
					continue
				}
				if d == '$' {
					v, next, err := expand(i)
					if err != nil {
						return nil, err
					}
					w.WriteString(v)
					i = next
					continue
				}
				w.WriteByte(d)
				i++
			}
			inWord = true
		case c == '\\' && i+1 < len(line):
			w.WriteByte(line[i+1])
			i += 2
			inWord = true
		case c == '$':
			v, next, err := expand(i)
			if err != nil {
				return nil, err
			}
			w.WriteString(v)
			i = next
			inWord = true
		default:
			w.WriteByte(c)
			i++
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func TestShellWords(t *testing.T) {
	vars := map[string]string{"TX": "AbC+/=", "RPC": "http://x/rpc"}
	for _, c := range []struct {
		in   string
		want []string
	}{
		{`curl -s "$RPC" -d '{"tx":"'"$TX"'"}'`, []string{"curl", "-s", "http://x/rpc", "-d", `{"tx":"AbC+/="}`}},
		{`sessionctl --identity alice.json tx send S "from the docs"`, []string{"sessionctl", "--identity", "alice.json", "tx", "send", "S", "from the docs"}},
		{`a\ b "c\"d" ${TX}x '$TX'`, []string{"a b", `c"d`, "AbC+/=x", "$TX"}},
		{`""  ''`, []string{"", ""}},
	} {
		got, err := shellWords(c.in, vars)
		if err != nil || strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
			t.Errorf("shellWords(%s) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`'open`, `"open`, `$UNSET`, `"${TX"`} {
		if _, err := shellWords(bad, vars); err == nil {
			t.Errorf("shellWords(%s) succeeded", bad)
		}
	}
}
