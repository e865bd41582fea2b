package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

// docExample is one curl example of docs/api.md.
type docExample struct {
	line     int
	heading  string
	body     string    // the -d '...' argument, unexpanded
	curl     string    // the curl line
	assigns  []string  // NAME=$(sessionctl ...) lines before it
	wantCode ErrorCode // from "# expect error N"; 0: success
	response string    // the JSON block that follows, if any
}

var (
	curlBody   = regexp.MustCompile(`-d '([^']*)'`)
	expectLine = regexp.MustCompile(`^# expect error (-?\d+)$`)
	codeRow    = regexp.MustCompile(`^\| (-\d+) \|`)
)

func parseDocs(t *testing.T, text string) (examples []docExample, headings []string, codes []ErrorCode) {
	t.Helper()
	lines := strings.Split(text, "\n")
	heading := ""
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if h, ok := strings.CutPrefix(l, "### "); ok {
			heading = h
			headings = append(headings, h)
			continue
		}
		if m := codeRow.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			codes = append(codes, ErrorCode(n))
			continue
		}
		if l != "```sh" {
			continue
		}
		ex := docExample{line: i + 1, heading: heading}
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			if m := expectLine.FindStringSubmatch(lines[i]); m != nil {
				n, _ := strconv.Atoi(m[1])
				ex.wantCode = ErrorCode(n)
			}
			if m := curlBody.FindStringSubmatch(lines[i]); m != nil {
				ex.body, ex.curl = m[1], lines[i]
			}
			if assignLine.MatchString(lines[i]) {
				ex.assigns = append(ex.assigns, lines[i])
			}
		}
		if ex.body == "" {
			t.Fatalf("docs/api.md:%d: sh block without a curl -d '...' body", ex.line)
		}
		// The response block, if the next block is JSON.
		for j := i + 1; j < len(lines); j++ {
			if strings.TrimSpace(lines[j]) == "" {
				continue
			}
			if lines[j] == "```json" {
				var b strings.Builder
				for j++; j < len(lines) && lines[j] != "```"; j++ {
					b.WriteString(lines[j])
					b.WriteByte('\n')
				}
				ex.response = b.String()
			}
			break
		}
		examples = append(examples, ex)
	}
	return examples, headings, codes
}

// TestDocs runs every curl example of docs/api.md against a test chain
// and checks that the documentation covers every method and error code.
func TestDocs(t *testing.T) {
	raw, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	examples, headings, codes := parseDocs(t, string(raw))
	if len(examples) < len(Methods) {
		t.Fatalf("docs/api.md: %d examples for %d methods", len(examples), len(Methods))
	}
	t.Logf("%d examples, %d error codes", len(examples), len(codes))

	// Coverage: a heading and an example per method, a row per code.
	for _, m := range Methods {
		if !slices.Contains(headings, Namespace+"."+m) {
			t.Errorf("docs/api.md has no heading ### %s.%s", Namespace, m)
		}
		if !slices.ContainsFunc(examples, func(ex docExample) bool {
			return strings.Contains(ex.body, `"method":"`+Namespace+"."+m+`"`)
		}) {
			t.Errorf("docs/api.md has no example of %s.%s", Namespace, m)
		}
	}
	for code := range codeNames {
		if !slices.Contains(codes, code) {
			t.Errorf("docs/api.md error table lacks %d (%s)", code, code)
		}
	}
	if len(codes) != len(codeNames) {
		t.Errorf("docs/api.md lists %d codes, the package has %d", len(codes), len(codeNames))
	}

	// The chain the examples run against, watching free disk space as a
	// node does (a small reserve, so the machine's disk does not matter).
	nodeCfg, _ := json.Marshal(map[string]any{"diskPath": t.TempDir(), "diskReserveBytes": 1 << 20})
	e := newEnvWith(t, envOpts{nodeConfig: string(nodeCfg)})
	// The sessionctl binary checks prekey expiries against the real
	// clock: the chain's block time is brought to it.
	e.clock.Advance(time.Since(e.clock.Now()))
	ctx := context.Background()
	c := e.client
	alice, bob, carol := e.alice, e.bob, e.carol
	sess := e.session(alice, bob)
	s2 := e.session(bob, alice)
	first, err := c.SendSealed(ctx, alice, sess, []byte("hello bob"))
	if err != nil {
		t.Fatal(err)
	}
	ch := e.channel(alice, "general")
	if _, err := c.JoinChannel(ctx, bob, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Post(ctx, alice, ch, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	// Bob's prekeys, and a message request from carol to bob.
	week := e.clock.Now().Add(7 * 24 * time.Hour).UnixMilli()
	// More one-time prekeys than the reserve kept for contacts, so that a
	// stranger's handshake (sessionctl tx send) may claim one.
	var oneTime []tx.OneTimePrekey
	for i := range config.Default().Prekeys.StrangerReserve + 4 {
		oneTime = append(oneTime, tx.OneTimePrekey{ID: uint32(i + 1), KEMPublicKey: prekeyKey(t, 1+int(i%2))})
	}
	if _, err := c.PublishPrekeys(ctx, bob, &tx.SignedPrekey{ID: 1, ExpiresAt: week, KEMPublicKey: prekeyKey(t, 0)}, oneTime...); err != nil {
		t.Fatal(err)
	}
	// The request claims bob's signed prekey and a one-time prekey a
	// stranger may claim (bob has more than his reserve).
	e.accept()
	b, err := c.PrekeyBundleFor(ctx, PrekeyBundleArgs{SessionID: bob.SessionID, Claimer: carol.SessionID})
	if err != nil {
		t.Fatal(err)
	}
	claim, err := b.ClaimOf()
	if err != nil || claim.OneTimePrekeyID == 0 {
		t.Fatalf("bob's bundle for carol: %+v, %v", claim, err)
	}
	request, err := c.CreateSessionWithClaims(ctx, carol, nil, []string{bob.SessionID}, []tx.Claim{claim})
	if err != nil {
		t.Fatal(err)
	}
	e.accept()

	fixed := func(s string) func() string { return func() string { return s } }
	newcomer := identity(t, 6)
	placeholders := map[string]func() string{
		"<ALICE>":         fixed(alice.SessionID),
		"<BOB>":           fixed(bob.SessionID),
		"<SESSION>":       fixed(sess.String()),
		"<OTHER_SESSION>": fixed(s2.String()),
		"<CHANNEL>":       fixed(ch.String()),
		"<TX_ID>":         fixed(first.TxID.String()),
		"<REQUEST>":       fixed(request.Session.String()),
	}
	// Write examples sign with the sessionctl binary, as these identities.
	sh := newDocShell(t, e.srv.URL, map[string]*crypto.Identity{"alice": alice, "bob": bob, "carol": carol, "newcomer": newcomer})
	placeholder := regexp.MustCompile(`<[A-Z_]+>`)

	for _, ex := range examples {
		name := fmt.Sprintf("line %d %s", ex.line, ex.heading)
		subst := func(s string) string {
			return placeholder.ReplaceAllStringFunc(s, func(p string) string {
				f, ok := placeholders[p]
				if !ok {
					t.Fatalf("%s: unknown placeholder %s", name, p)
				}
				return f()
			})
		}
		for _, a := range ex.assigns {
			sh.assign(name, subst(a))
		}
		body := sh.curlBody(name, subst(ex.curl))
		if strings.HasPrefix(body, "[") && ex.wantCode == 0 {
			// A batch: every call succeeds, and the documented array has
			// a response of the same shape for each.
			rs := postBatch(t, e.h, []byte(body))
			var doc []json.RawMessage
			if err := json.Unmarshal([]byte(ex.response), &doc); err != nil || len(doc) != len(rs) {
				t.Fatalf("%s: documented %d responses (%v), got %d", name, len(doc), err, len(rs))
			}
			for i, r := range rs {
				if r.Error != nil {
					t.Fatalf("%s: call %d: error %d: %s", name, i, r.Error.Code, r.Error.Message)
				}
				checkDocumentedResponse(t, name, string(doc[i]), r)
			}
			if strings.Contains(body, `"tx":`) {
				e.accept()
			}
			continue
		}
		r := post(t, e.h, http.MethodPost, "application/json", []byte(body))
		switch {
		case ex.wantCode == 0 && r.Error != nil:
			t.Fatalf("%s: %s\n→ error %d: %s", name, truncate([]byte(body)), r.Error.Code, r.Error.Message)
		case ex.wantCode != 0 && (r.Error == nil || r.Error.Code != ex.wantCode):
			t.Fatalf("%s: want error %d, got %+v", name, ex.wantCode, r.Error)
		}
		if ex.response != "" {
			checkDocumentedResponse(t, name, ex.response, r)
		}
		if r.Error == nil && strings.Contains(body, `"tx":`) {
			e.accept()
		}
	}
}

// checkDocumentedResponse compares the documented response with the real
// one: same error code, or the same result fields (one level into objects
// and into the first element of arrays).
func checkDocumentedResponse(t *testing.T, name, doc string, r *rawResponse) {
	t.Helper()
	var d struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  json.RawMessage `json:"result"`
		Error   *Error          `json:"error"`
	}
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatalf("%s: documented response is not JSON: %v\n%s", name, err, doc)
	}
	if d.JSONRPC != "2.0" || len(d.ID) == 0 {
		t.Fatalf("%s: documented response lacks jsonrpc or id", name)
	}
	if d.Error != nil {
		if r.Error == nil || r.Error.Code != d.Error.Code {
			t.Fatalf("%s: documented error %d, got %+v", name, d.Error.Code, r.Error)
		}
		return
	}
	if r.Error != nil {
		t.Fatalf("%s: documented a result, got error %+v", name, r.Error)
	}
	sameShape(t, name, "result", d.Result, r.Result)
}

func sameShape(t *testing.T, name, path string, doc, got json.RawMessage) {
	t.Helper()
	var dm, gm map[string]json.RawMessage
	if json.Unmarshal(doc, &dm) == nil && json.Unmarshal(got, &gm) == nil {
		var dk, gk []string
		for k := range dm {
			dk = append(dk, k)
		}
		for k := range gm {
			gk = append(gk, k)
		}
		slices.Sort(dk)
		slices.Sort(gk)
		if !slices.Equal(dk, gk) {
			t.Fatalf("%s: %s documents fields %v, the node returns %v", name, path, dk, gk)
		}
		for _, k := range dk {
			if len(dm[k]) > 0 && dm[k][0] == '[' {
				var da, ga []json.RawMessage
				if json.Unmarshal(dm[k], &da) == nil && json.Unmarshal(gm[k], &ga) == nil && len(da) > 0 && len(ga) > 0 {
					sameShape(t, name, path+"."+k+"[0]", da[0], ga[0])
				}
			}
		}
	}
}
