package service

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/luxfi/ids"
)

// sameCall compares what the fast and the general path made of a request.
func sameCall(t testing.TB, body []byte, fast, general *call) {
	t.Helper()
	if !bytes.Equal(fast.id, general.id) || fast.hasID != general.hasID || fast.method != general.method ||
		!bytes.Equal(fast.params, general.params) {
		t.Fatalf("%q:\nfast    id %q (%v) method %q params %q\ngeneral id %q (%v) method %q params %q",
			truncate(body), fast.id, fast.hasID, fast.method, fast.params,
			general.id, general.hasID, general.method, general.params)
	}
	if fast.haveTx {
		var a struct {
			Tx []byte `json:"tx"`
		}
		if err := decodeParams(general.params, &a); err != nil || !bytes.Equal(a.Tx, fast.tx) {
			t.Fatalf("%q: fast path decoded tx %x; general path %x, %v", truncate(body), fast.tx, a.Tx, err)
		}
	}
}

// checkFastCall: whatever the fast path accepts, the general path accepts
// with the same result.
func checkFastCall(t testing.TB, body []byte) (fastTook bool) {
	t.Helper()
	body = bytes.TrimLeft(body, " \t\r\n") // as the handler does
	var fast call
	next, ok := 0, false
	if len(body) > 0 && body[0] == '{' {
		next, ok = fast.parseFast(body, 0)
	}
	if !ok || skipWS(body, next) != len(body) {
		return false
	}
	if !json.Valid(body) {
		t.Fatalf("fast path accepted invalid JSON %q", truncate(body))
	}
	var general call
	if e := general.parseGeneral(body); e != nil {
		t.Fatalf("fast path accepted %q; general path: %v", truncate(body), e)
	}
	sameCall(t, body, &fast, &general)
	return true
}

var callCorpus = func() []string {
	tx := base64.StdEncoding.EncodeToString([]byte("\x00\x01 transaction bytes \xff/+="))
	return []string{
		`{"jsonrpc":"2.0","id":1,"method":"session.status"}`,
		`{"jsonrpc":"2.0","method":"session.issueTx","params":{"tx":"` + tx + `"},"id":12}`,
		" {\n\"jsonrpc\" : \"2.0\" ,\t\"id\":\"abc\",\"method\":\"session.sendMessage\",\"params\": { \"tx\" : \"" + tx + "\" } } ",
		`{"jsonrpc":"2.0","id":null,"method":"session.getInbox","params":{"sessionId":"07ab","after":0,"limit":1000}}`,
		`{"jsonrpc":"2.0","id":-1.5e+3,"method":"session.getMessages","params":[{"session":"x"}]}`,
		`{"jsonrpc":"2.0","method":"session.status"}`,
		`{"jsonrpc":"2.0","id":1,"method":"session.status","params":null}`,
		`{"jsonrpc":"2.0","id":1,"method":"session.status","extra":{"a":[1,true,false,null,"x\"y\\u00e9"]}}`,
		`{"jsonrpc":"2.0","id":1,"method":"session.status","params":{"tx":"` + tx + `","x":1}}`,
		`{"jsonrpc":"2.0","id":1,"method":"session.status","params":{"tx":"A\/=="}}`,
		`{"jsonrpc":"2.0","id":1,"method":"session.status","params":{"tx":"AA=="}}`,
		`{"jsonrpc":"2.0","id":1,"id":2,"method":"session.status"}`,
		`{"jsonrpc":"2.0","id":"\u0041","method":"session.status"}`,
		`{"jsonrpc":"2.0","id":"a` + "\xff" + `","method":"session.status"}`,
		`{"jsonrpc":"2.0","id":1,"method":"` + "\xff" + `"}`,
		`{"jsonrpc":"2.0","id":1,"method":""}`,
		`{"jsonrpc":"1.0","id":1,"method":"session.status"}`,
		`{"jsonrpc":"2\u002e0","id":1,"method":"session.status"}`,
		`{"id":1,"method":"session.status"}`,
		`{"jsonrpc":"2.0","id":01,"method":"session.status"}`,
		`{"jsonrpc":"2.0","id":1,"method":"session.status","params":"x"}`,
		`{"jsonrpc":"2.0","id":1,"method":"session.status","params":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`,
		`{"jsonrpc":"2.0","id":1,"method":"session.status"`,
		`{"jsonrpc":"2.0","id":1,"method":"session.status"}}`,
		`{"jsonrpc":"2.0","id":tru,"method":"session.status"}`,
		"{\"jsonrpc\":\"2.0\",\"id\":\"a\tb\",\"method\":\"session.status\"}",
		`{"jsonrpc":"2.0","id":1,"method":"session.status","params":{"tx":"AA` + "\n" + `=="}}`,
	}
}()

// TestFastCallMatchesGeneral runs the corpus through both paths, and
// checks that the fast path takes the common shapes (else it would be no
// faster).
func TestFastCallMatchesGeneral(t *testing.T) {
	took := 0
	for _, body := range callCorpus {
		if checkFastCall(t, []byte(body)) {
			took++
		}
	}
	for _, body := range callCorpus[:9] {
		if !checkFastCall(t, []byte(body)) {
			t.Errorf("the fast path declined %q", truncate([]byte(body)))
		}
	}
	t.Logf("fast path took %d of %d", took, len(callCorpus))
}

func FuzzFastCall(f *testing.F) {
	for _, s := range callCorpus {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFastCall(t, body)
	})
}

// FuzzSkipValue: a value the scanner skips to the end is valid JSON.
func FuzzSkipValue(f *testing.F) {
	for _, s := range callCorpus {
		f.Add([]byte(s))
	}
	for _, s := range []string{`[1,2]`, `"\ud800"`, `-0.0e-0`, `[]`, `{}`, `[{"a":{}}]`, `1.`, `-`, `"\x"`, `[1,]`, `{"a":1,}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end, ok := skipValue(b, 0, 0)
		if ok && end == len(b) && !json.Valid(b) {
			t.Fatalf("skipValue accepted invalid JSON %q", b)
		}
	})
}

// batchResult is what a batch's calls are, for comparing the two paths.
func sameBatch(t testing.TB, body []byte, fast, general []*call, fe, ge *Error) {
	t.Helper()
	if (fe == nil) != (ge == nil) || fe != nil && fe.Code != ge.Code {
		t.Fatalf("%q: fast path error %v, general path %v", truncate(body), fe, ge)
	}
	if len(fast) != len(general) {
		t.Fatalf("%q: %d calls, general path %d", truncate(body), len(fast), len(general))
	}
	for i := range fast {
		f, g := fast[i], general[i]
		if (f.err == nil) != (g.err == nil) || f.err != nil && (f.err.Code != g.err.Code || f.err.Message != g.err.Message) {
			t.Fatalf("%q call %d: error %v, general path %v", truncate(body), i, f.err, g.err)
		}
		if f.err == nil {
			sameCall(t, body, f, g)
		}
	}
}

func checkBatch(t testing.TB, body []byte) {
	t.Helper()
	b := bytes.TrimLeft(body, " \t\r\n")
	if len(b) == 0 || b[0] != '[' {
		return
	}
	fast, fe := parseBatch(b)
	general, ge := parseBatchGeneral(b)
	if fe == nil && !json.Valid(b) {
		t.Fatalf("batch of invalid JSON accepted: %q", truncate(b))
	}
	sameBatch(t, b, fast, general, fe, ge)
}

func TestBatchParseMatchesGeneral(t *testing.T) {
	for _, s := range []string{
		"[" + strings.Join(callCorpus, ",") + "]",
		"[" + callCorpus[0] + "]",
		"[ " + callCorpus[1] + " , " + callCorpus[2] + " ]",
		"[1,2,3]",
		`[{"foo":"boo"},{"jsonrpc":"2.0","method":"session.status"}]`,
		"[[]]",
		"[]",
		"[" + callCorpus[0] + ",]",
		"[" + callCorpus[0] + "] ]",
		"[" + callCorpus[0],
	} {
		checkBatch(t, []byte(s))
	}
}

func FuzzBatch(f *testing.F) {
	f.Add([]byte("[" + strings.Join(callCorpus[:5], ",") + "]"))
	f.Add([]byte(`[1,{"jsonrpc":"2.0","method":"x"},[]]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkBatch(t, body)
	})
}

func TestHasControl(t *testing.T) {
	for n := 0; n < 40; n++ {
		for pos := 0; pos < n; pos++ {
			for _, c := range []byte{0x00, 0x0a, 0x1f} {
				s := bytes.Repeat([]byte{'A'}, n)
				s[pos] = c
				if !hasControl(s) {
					t.Fatalf("missed %#x at %d of %d", c, pos, n)
				}
			}
		}
		s := bytes.Repeat([]byte{0x20}, n)
		for i := range s {
			s[i] = byte(0x20 + (i*37)%224) // every byte from 0x20 to 0xff
		}
		if hasControl(s) {
			t.Fatalf("false positive in %q", s)
		}
	}
}

// TestEncodersMatchJSON: the hand-written encoders write what
// encoding/json writes, and their sizes are exact.
func TestEncodersMatchJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randID := func() ids.ID {
		var id ids.ID
		for i := range id {
			id[i] = byte(rng.IntN(256))
		}
		return id
	}
	native := ids.ID{31: 'P'}
	check := func(v any) {
		t.Helper()
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		n, ok := replySize(v)
		if !ok {
			t.Fatalf("%T has no encoder", v)
		}
		got := appendReply(make([]byte, 0, n), v)
		if !bytes.Equal(got, want) {
			t.Fatalf("%T:\ngot  %s\nwant %s", v, truncate(got), truncate(want))
		}
		if len(got) > n || cap(got) != n || n > len(got)+300*(1+len(got)/100) {
			t.Fatalf("%T: size bound %d, encoded %d (cap %d)", v, n, len(got), cap(got))
		}
	}
	for i := 0; i < 200; i++ {
		var r MessagesReply
		switch i % 4 {
		case 0:
			r.Messages = []Message{}
		case 1:
			// nil Messages
		default:
			target := randID()
			for j := 0; j < rng.IntN(20)+1; j++ {
				if rng.IntN(4) == 0 {
					target = randID()
				}
				if rng.IntN(10) == 0 {
					target = native
				}
				ct := make([]byte, rng.IntN(300))
				for k := range ct {
					ct[k] = byte(rng.IntN(256))
				}
				if rng.IntN(10) == 0 {
					ct = nil
				}
				r.Messages = append(r.Messages, Message{
					Target: target, Seq: rng.Uint64() >> rng.IntN(64), Author: "07" + strings.Repeat("ab", 32),
					TxID: randID(), Height: rng.Uint64() >> rng.IntN(64), Position: rng.Uint64(),
					Timestamp: rng.Int64() - math.MaxInt64/2, Ciphertext: ct,
				})
			}
		}
		r.Next, r.More = rng.Uint64()>>rng.IntN(64), rng.IntN(2) == 0
		check(&r)
	}
	for i := 0; i < 50; i++ {
		r := TxReply{TxID: randID(), Type: "sendMessage", Author: "07" + strings.Repeat("cd", 32), Nonce: rng.Uint64() >> rng.IntN(64)}
		if i%3 == 1 {
			r.Session = randID()
		}
		if i%3 == 2 {
			r.Channel = native
		}
		check(&r)
	}
	check(&TxReply{})
}
