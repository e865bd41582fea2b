package service

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/vm"
)

// The attacks of an anonymous client on the handler: each test sends what
// a stranger can send and asserts the bound or the refusal. The node-level
// attacks (connections, Host, Origin, the web UI) are in package node.

// TestLongIDsRefusedBeforeDecoding: a CB58 ID parameter is refused by its
// length before it is decoded. Base58 decoding takes time quadratic in the
// length (a 100 KB string took 3 s of CPU, a 1 MB one would take minutes),
// so without the check one request of 1 MiB pinned a core for minutes.
func TestLongIDsRefusedBeforeDecoding(t *testing.T) {
	// The bound holds every ID: 36 bytes (ID and checksum) in base58.
	for _, id := range []ids.ID{{}, {0xff, 0xff}, func() ids.ID { var x ids.ID; rand.Read(x[:]); return x }(), func() ids.ID {
		var x ids.ID
		for i := range x {
			x[i] = 0xff
		}
		return x
	}()} {
		if s := id.String(); len(s) > maxCB58IDLen {
			t.Fatalf("ID %s is %d characters, over maxCB58IDLen %d", s, len(s), maxCB58IDLen)
		}
		if _, err := parseID("x", id.String()); err != nil {
			t.Fatalf("parseID(%s): %v", id, err)
		}
	}

	e := newEnv(t)
	long := strings.Repeat("z", 300<<10) // about 30 s of base58 decoding
	for _, tc := range []struct{ method, params string }{
		{"getTxStatus", `{"txID":"` + long + `"}`},
		{"getTx", `{"txID":"` + long + `"}`},
		{"getSession", `{"session":"` + long + `"}`},
		{"getMessages", `{"session":"` + long + `"}`},
		{"getMessages", `{"channel":"` + long + `"}`},
		{"getChannel", `{"channel":"` + long + `"}`},
		{"isChannelMember", `{"channel":"` + long + `","sessionId":"` + e.alice.SessionID + `"}`},
		{"getPrekeyBundle", `{"sessionId":"` + e.alice.SessionID + `","claimer":"` + e.bob.SessionID + `","session":"` + long + `"}`},
	} {
		start := time.Now()
		r := post(t, e.h, http.MethodPost, "application/json", []byte(reqJSON("1", tc.method, tc.params)))
		if r.Error == nil || r.Error.Code != CodeInvalidParams || !strings.Contains(r.Error.Message, "at most 50") {
			t.Errorf("%s with a 300 KB ID: %+v", tc.method, r.Error)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s with a 300 KB ID took %v", tc.method, d)
		}
	}
}

// TestJSONShapesBoundAllocation: bodies of a million tiny members or
// elements, which encoding/json decodes into maps and slices at 20 to 70
// times their size, are walked in place on every path a stranger can
// reach (a batch the fast scanner declines, a request object without a
// method, params as an array or with many keys, a number of a megabyte).
// Before, a 1 MiB body allocated up to 72 MB, and 32 of them at once (what
// the body budget lets in) held over 500 MB of live heap; now each stays
// within a few times its size.
func TestJSONShapesBoundAllocation(t *testing.T) {
	e := newEnv(t)
	deep := strings.Repeat("[", 70) + strings.Repeat("]", 70) // declined by the fast scanner
	zeros := strings.TrimSuffix(strings.Repeat("0,", (MaxBodySize-200)/2), ",")
	var keys strings.Builder
	for i := 0; keys.Len() < MaxBodySize-300; i++ {
		fmt.Fprintf(&keys, `"k%d":0,`, i)
	}
	ks := strings.TrimSuffix(keys.String(), ",")
	for _, tc := range []struct {
		name, body string
		status     int
		code       ErrorCode
	}{
		{"batch of a million elements", "[" + deep + "," + zeros + "]", 413, CodeTooLarge},
		{"batch of a million elements, fast", "[" + zeros + "]", 413, CodeTooLarge},
		{"object of 100,000 members", `{"jsonrpc":"2.0","id":1,` + ks + `}`, 400, CodeInvalidRequest},
		{"params of a million elements", `{"jsonrpc":"2.0","id":1,"method":"session.status","params":[` + zeros + `]}`, 200, CodeInvalidParams},
		{"params of 100,000 members", `{"jsonrpc":"2.0","id":1,"method":"session.status","params":{` + ks + `}}`, 200, CodeInvalidParams},
		{"params of 60,000 duplicate members", `{"jsonrpc":"2.0","id":1,"method":"session.getNonce","params":{` +
			strings.TrimSuffix(strings.Repeat(`"sessionId":"x",`, 60000), ",") + `}}`, 200, CodeInvalidParams},
		{"a number of 900,000 digits", `{"jsonrpc":"2.0","id":1,"method":"session.getInbox","params":{"sessionId":"x","limit":1` +
			strings.Repeat("0", 900000) + `}}`, 200, CodeInvalidParams},
	} {
		body := []byte(tc.body)
		if len(body) > MaxBodySize {
			t.Fatalf("%s: %d bytes, over the limit", tc.name, len(body))
		}
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		r := post(t, e.h, http.MethodPost, "application/json", body)
		runtime.ReadMemStats(&m1)
		if r.Status != tc.status || r.Error == nil || r.Error.Code != tc.code {
			t.Errorf("%s: HTTP %d, %+v; want %d, code %d", tc.name, r.Status, r.Error, tc.status, tc.code)
		}
		if len(r.Error.Message) > 300 {
			t.Errorf("%s: an error message of %d bytes", tc.name, len(r.Error.Message))
		}
		// The request, the handler's copy of the body and the response
		// recorder take about 3 times the body; the rest of the node
		// allocates little meanwhile.
		if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 8*uint64(len(body)) {
			t.Errorf("%s: %d bytes allocated for a body of %d (%.1fx)", tc.name, alloc, len(body), float64(alloc)/float64(len(body)))
		}
	}
}

// FuzzWalkMatchesDecoding: eachMember and eachElement see what
// encoding/json decodes: the same members (the last of duplicates) and the
// same elements, on any valid JSON.
func FuzzWalkMatchesDecoding(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":1,"a":[2,{"b":"]"}],"\u0061":"\"}"}`, `[1,"x\\",{"y":[]},[[[]]],true,null,-1.5e3]`,
		` { "k" : { "n" : [ 1 , 2 ] } , "s" : "\u00e9" } `, `{"a":"` + "\xff" + `"}`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := bytes.TrimSpace(data)
		if !json.Valid(b) || len(b) == 0 {
			return
		}
		compact := func(v []byte) string {
			var out bytes.Buffer
			if err := json.Compact(&out, v); err != nil {
				t.Fatalf("walk gave invalid JSON %q: %v", v, err)
			}
			return out.String()
		}
		switch b[0] {
		case '{':
			var want map[string]json.RawMessage
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			eachMember(b, func(k, v []byte) bool { got[string(k)] = compact(v); return true })
			if len(got) != len(want) {
				t.Fatalf("%q: walk saw %d members, encoding/json %d", b, len(got), len(want))
			}
			for k, v := range want {
				if got[k] != compact(v) {
					t.Fatalf("%q: member %q: walk %s, encoding/json %s", b, k, got[k], compact(v))
				}
			}
		case '[':
			var want []json.RawMessage
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			var got []string
			eachElement(b, func(v []byte) bool { got = append(got, compact(v)); return true })
			if len(got) != len(want) {
				t.Fatalf("%q: walk saw %d elements, encoding/json %d", b, len(got), len(want))
			}
			for i := range want {
				if got[i] != compact(want[i]) {
					t.Fatalf("%q: element %d: walk %s, encoding/json %s", b, i, got[i], compact(want[i]))
				}
			}
		default:
			if end := skipValid(b, 0); end != len(b) {
				t.Fatalf("%q: skipValid ends at %d of %d", b, end, len(b))
			}
		}
	})
}

// TestBodilessRequestsCannotTakeTheBodyBudget: connections that send the
// headers of a large or chunked POST and then nothing hold 2 × 8 KiB each
// of the body budget, not 2 × 64 KiB as before, so the connection bound
// (1024 × 16 KiB = 16 MiB) cannot exhaust the default 64 MiB budget, and
// here 64 of them leave room in a budget of 2 MiB for a client that sends
// its body. Before, 16 such connections took the whole 2 MiB and every
// request with a body was answered 503.
func TestBodilessRequestsCannotTakeTheBodyBudget(t *testing.T) {
	e := newEnvWith(t, envOpts{handler: Options{BodyBudget: 2 * (MaxBodySize + 1), BusyWait: 200 * time.Millisecond}})
	h := e.h.(*handler)
	addr := e.srv.Listener.Addr().String()
	const conns = 64
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		head := "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
		if i%2 == 0 {
			head += "Transfer-Encoding: chunked\r\n\r\n"
		} else {
			head += "Content-Length: " + strconv.Itoa(MaxBodySize) + "\r\n\r\n"
		}
		if _, err := c.Write([]byte(head)); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); h.body.inUse() < conns*2*bodyPoolSize && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := h.body.inUse(); n != conns*2*bodyPoolSize {
		t.Fatalf("%d bodiless requests hold %d bytes of the body budget, want %d", conns, n, conns*2*bodyPoolSize)
	}
	r := post(t, e.h, http.MethodPost, "application/json", []byte(statusRequest))
	if r.Status != http.StatusOK || r.Error != nil {
		t.Fatalf("with %d bodiless requests waiting: HTTP %d, %+v", conns, r.Status, r.Error)
	}
}

// TestPageParamsAtTheirEdges: every read method that pages refuses a
// limit out of [0, 1000] (negative, 1001, a float, beyond int64) and a
// cursor that is not a uint64 (negative, 2^64, a float), and answers the
// largest cursor with an empty page, not an error or a crash.
func TestPageParamsAtTheirEdges(t *testing.T) {
	e := newEnv(t)
	sess := e.session(e.alice, e.bob)
	ch := e.channel(e.alice, "edges")
	for _, m := range []struct {
		method, base, limit, after string
	}{
		{"getMessages", `"session":"` + sess.String() + `"`, "limit", "after"},
		{"getMessages", `"channel":"` + ch.String() + `"`, "limit", "after"},
		{"getInbox", `"sessionId":"` + e.bob.SessionID + `"`, "limit", "after"},
		{"listSessions", `"sessionId":"` + e.alice.SessionID + `"`, "limit", "after"},
		{"getRequests", `"sessionId":"` + e.bob.SessionID + `"`, "limit", "after"},
		{"getClaims", `"sessionId":"` + e.bob.SessionID + `"`, "limit", "after"},
		{"getChannel", `"channel":"` + ch.String() + `"`, "membersLimit", ""},
	} {
		call := func(extra string) *rawResponse {
			return post(t, e.h, http.MethodPost, "application/json", []byte(reqJSON("1", m.method, "{"+m.base+","+extra+"}")))
		}
		for _, v := range []string{"-1", "1001", "1e3", "1.5", "9223372036854775808", "1" + strings.Repeat("0", 400), `"10"`, "null"} {
			r := call(`"` + m.limit + `":` + v)
			if v == "null" { // null leaves the default
				if r.Error != nil {
					t.Errorf("%s %s null: %+v", m.method, m.limit, r.Error)
				}
				continue
			}
			if r.Error == nil || r.Error.Code != CodeInvalidParams || len(r.Error.Message) > 300 {
				t.Errorf("%s %s %.20s: %+v", m.method, m.limit, v, r.Error)
			}
		}
		if r := call(`"` + m.limit + `":1000`); r.Error != nil {
			t.Errorf("%s %s 1000: %+v", m.method, m.limit, r.Error)
		}
		if m.after == "" {
			continue
		}
		for _, v := range []string{"-1", "18446744073709551616", "1.5", "1e3", `"1"`} {
			if r := call(`"` + m.after + `":` + v); r.Error == nil || r.Error.Code != CodeInvalidParams {
				t.Errorf("%s %s %s: %+v", m.method, m.after, v, r.Error)
			}
		}
		r := call(`"` + m.after + `":18446744073709551615,"` + m.limit + `":1000`)
		if r.Error != nil || r.Status != http.StatusOK {
			t.Errorf("%s %s 2^64-1: HTTP %d, %+v", m.method, m.after, r.Status, r.Error)
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(r.Result, &page); err != nil {
			t.Fatalf("%s: %v", m.method, err)
		}
		if string(page["more"]) == "true" {
			t.Errorf("%s after 2^64-1: more pages", m.method)
		}
	}
}

// TestBodyAndBatchEdges: bodies and batches at and just past each bound,
// over a real connection (chunked without a length, Expect:
// 100-continue): each is answered as documented, nothing else runs.
func TestBodyAndBatchEdges(t *testing.T) {
	e := newEnv(t)
	one := reqJSON("1", "status", "")
	pad := func(body string, size int) string { // white space up to size bytes
		return body + strings.Repeat(" ", size-len(body))
	}
	send := func(body string, chunked, expect bool) (int, []byte) {
		t.Helper()
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // no length: sent chunked
		}
		req, err := http.NewRequest(http.MethodPost, e.srv.URL, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if expect {
			req.Header.Set("Expect", "100-continue")
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			return 0, nil // the server closed the connection after answering early
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, tc := range []struct {
		name   string
		body   string
		status int
	}{
		{"exactly MaxBodySize", pad(one, MaxBodySize), 200},
		{"one byte over", pad(one, MaxBodySize+1), 413},
		{"a batch of exactly MaxBodySize", pad("["+one+"]", MaxBodySize), 200},
		{"a batch of 256", "[" + strings.Repeat(one+",", MaxBatchCalls-1) + one + "]", 200},
		{"a batch of 257", "[" + strings.Repeat(one+",", MaxBatchCalls) + one + "]", 413},
		{"a batch of 257 notifications", "[" + strings.Repeat(reqJSON("", "status", "")+",", MaxBatchCalls) + reqJSON("", "status", "") + "]", 413},
		{"notifications only", "[" + reqJSON("", "status", "") + "," + reqJSON("", "getNonce", `{"sessionId":"x"}`) + "]", 204},
		{"nesting a million deep", strings.Repeat("[", 500000) + strings.Repeat("]", 500000), 400},
		{"an object nested a million deep", `{"jsonrpc":"2.0","id":1,"method":"session.status","params":{"a":` + strings.Repeat("[", 500000) + strings.Repeat("]", 500000) + `}}`, 400},
	} {
		for _, mode := range []struct {
			name            string
			chunked, expect bool
		}{{"", false, false}, {"chunked", true, false}, {"100-continue", false, true}} {
			status, b := send(tc.body, mode.chunked, mode.expect)
			if status != tc.status && !(status == 0 && tc.status == 413) {
				t.Errorf("%s %s: HTTP %d, want %d: %.200s", tc.name, mode.name, status, tc.status, b)
			}
			if tc.status == 204 && len(b) != 0 {
				t.Errorf("%s %s: a body with 204: %q", tc.name, mode.name, b)
			}
		}
	}
	// Mixed: nested arrays, non-objects and notifications among calls;
	// each invalid element answers in its place, notifications do not.
	rs := postBatch(t, e.h, []byte("["+one+`,[`+one+`],1,"x",null,{},`+reqJSON("", "status", "")+`,`+reqJSON("2", "status", "")+"]"))
	if len(rs) != 7 {
		t.Fatalf("%d responses to 8 calls with one notification", len(rs))
	}
	for i, r := range rs {
		if ok := i == 0 || i == 6; ok != (r.Error == nil) {
			t.Errorf("response %d: %+v", i, r.Error)
		}
		if i > 0 && i < 6 && (r.Error == nil || r.Error.Code != CodeInvalidRequest) {
			t.Errorf("response %d: %+v, want -32600", i, r.Error)
		}
	}
}

// slowStatusAPI counts Status calls, each taking 10 ms.
type slowStatusAPI struct {
	vm.API
	calls atomic.Int64
}

func (a *slowStatusAPI) Status() (vm.Status, error) {
	a.calls.Add(1)
	time.Sleep(10 * time.Millisecond)
	return a.API.Status()
}

// TestBatchStopsWhenTheClientLeaves: a batch whose client disconnects
// runs no call that has not started. Before, a client could send 256
// expensive calls and leave (or never read, and lose the connection to
// the write deadline), and the node ran them all for nobody.
func TestBatchStopsWhenTheClientLeaves(t *testing.T) {
	e := newEnv(t)
	api := &slowStatusAPI{API: e.vm}
	h, err := newHandler(api, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := "[" + strings.Repeat(reqJSON("1", "status", "")+",", MaxBatchCalls-1) + reqJSON("1", "status", "") + "]"
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	c.Close()
	time.Sleep(500 * time.Millisecond) // the rest would take 2 s more
	if n := api.calls.Load(); n == 0 || n > 40 {
		t.Fatalf("%d of %d calls ran for a client that left after about 10", n, MaxBatchCalls)
	}
	// A client that stays gets every answer.
	api.calls.Store(0)
	short := "[" + strings.Repeat(reqJSON("1", "status", "")+",", 19) + reqJSON("1", "status", "") + "]"
	if rs := postBatch(t, h, []byte(short)); len(rs) != 20 || api.calls.Load() != 20 {
		t.Fatalf("%d responses, %d calls", len(rs), api.calls.Load())
	}
}

// TestDeclaredOversizeRefusedUnread: a body declared over MaxBodySize is
// answered 413 before it is read, so a client that asked Expect:
// 100-continue is never invited to send it (before, the node sent 100
// Continue and read a megabyte first).
func TestDeclaredOversizeRefusedUnread(t *testing.T) {
	e := newEnv(t)
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " +
		strconv.Itoa(64<<20) + "\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a declared 64 MiB body with Expect: 100-continue: HTTP %d", resp.StatusCode)
	}
}

// TestBodyReadErrorShowsNoAddresses: a body that does not arrive in time
// is answered with the reason, not the node's address (which behind NAT
// or a proxy is an internal one).
func TestBodyReadErrorShowsNoAddresses(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewUnstartedServer(e.h)
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "timeout") || strings.Contains(string(b), "127.0.0.1") {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, b)
	}
}

// deadlineWriter is a ResponseWriter whose writes block for delay each
// (a client reading slowly) and which records the write deadlines set.
type deadlineWriter struct {
	header    http.Header
	delay     time.Duration
	deadlines []time.Time
}

func (w *deadlineWriter) Header() http.Header { return w.header }
func (w *deadlineWriter) WriteHeader(int)     {}
func (w *deadlineWriter) Write(b []byte) (int, error) {
	time.Sleep(w.delay)
	return len(b), nil
}
func (w *deadlineWriter) SetWriteDeadline(t time.Time) error {
	w.deadlines = append(w.deadlines, t)
	return nil
}

// TestSlowReaderOfABatchIsCutOff: the time a batch's response may block
// in writes is the grace once plus all its bytes at MinWriteRate. Before,
// each element over 16 KiB set the deadline anew with a grace of its own,
// so a client reading far below the rate kept its connection (and a
// connection slot) as long as it pleased: 256 elements of 17 KB at 2
// KB/s, 40 minutes.
func TestSlowReaderOfABatchIsCutOff(t *testing.T) {
	e := newEnvWith(t, envOpts{handler: Options{WriteGrace: 100 * time.Millisecond, MinWriteRate: 1 << 30}})
	id := `"` + strings.Repeat("a", 18000) + `"` // each response over 16 KiB
	var calls []string
	for len(calls) < 20 {
		calls = append(calls, reqJSON(id, "status", ""))
	}
	req := httptest.NewRequest(http.MethodPost, "/rpc", strings.NewReader("["+strings.Join(calls, ",")+"]"))
	req.Header.Set("Content-Type", "application/json")
	w := &deadlineWriter{header: http.Header{}, delay: 20 * time.Millisecond}
	start := time.Now()
	e.h.ServeHTTP(w, req)
	// 20 elements, each blocking 40 ms: 800 ms of blocked writes against
	// 100 ms allowed. The deadline must never be set past the allowance,
	// counted from the start.
	if len(w.deadlines) == 0 {
		t.Fatal("no write deadline set")
	}
	if last := w.deadlines[len(w.deadlines)-1]; last.Sub(start) > 300*time.Millisecond {
		t.Fatalf("after %v of blocked writes the deadline is %v from the start; the allowance is 100 ms",
			time.Since(start).Round(time.Millisecond), last.Sub(start).Round(time.Millisecond))
	}
}
