package service

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/vm/tx"
)

// liveBytes is the live heap and the goroutine stacks after a GC.
func liveBytes() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// perConnBound bounds what one open connection costs the server besides
// the responses it holds (the connection's goroutine and its stack, its
// read and write buffers, the parsed request): docs/api.md, "Memory and
// concurrency".
const perConnBound = 64 << 10

// TestNonReadingClientsBoundMemory is the attack of issue 9 §1: a session
// full of the largest messages, and many connections that each ask for a
// page of it and never read. The node's live memory grows by at most the
// response budget plus a per-connection bound, and small requests
// (status, sendMessage) are answered meanwhile.
func TestNonReadingClientsBoundMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a session with 19 MB of messages")
	}
	const (
		budget  = 16 << 20
		clients = 200
	)
	// Alice stores 19 MB: above an identity's bytes burst (4 MiB).
	e := newEnvWith(t, envOpts{handler: Options{ResponseBudget: budget, BusyWait: 500 * time.Millisecond},
		cfg: map[string]any{"rateLimits": map[string]any{"bytes": map[string]any{"burst": 1 << 20, "refillSeconds": 1}}}})
	h := e.h.(*handler)
	// Serve as a node does: socket buffers bounded (BoundListener).
	e.srv.Close()
	e.srv = httptest.NewUnstartedServer(e.h)
	e.srv.Listener = BoundListener(e.srv.Listener, 0, DefaultSocketBuffer)
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	e.client = NewClient(e.srv.URL, WithTimeout(10*time.Second))
	ctx := context.Background()
	sess := e.session(e.alice, e.bob)
	n0, err := e.client.Nonce(ctx, e.alice.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, config.MaxCiphertextSize)
	for i := 0; i < 300; i++ {
		s, err := tx.Sign(e.alice, e.vm.ChainID(), n0+uint64(i), &tx.SendMessage{Session: sess, Ciphertext: big})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.vm.IssueTx(s.Bytes()); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 { // within an author's pending bytes
			for st, _ := e.vm.Status(); st.MempoolTxs > 0; st, _ = e.vm.Status() {
				e.accept()
			}
		}
	}
	page, err := e.client.Messages(ctx, sess, 0, MaxPageSize)
	if err != nil || !page.More || len(page.Messages) < 10 {
		t.Fatalf("a page of the session: %d messages, more %v, %v", len(page.Messages), page.More, err)
	}
	pageJSON := len(page.Messages) * (config.MaxCiphertextSize * 4 / 3)
	e.client = NewClient(e.srv.URL, WithTimeout(10*time.Second)) // fresh connections

	before, rssBefore := liveBytes(), rssBytes()
	// Half the clients page through the session, half through Bob's
	// inbox (the same messages).
	addr := e.srv.Listener.Addr().String()
	request := func(body string) string {
		return "POST / HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	reqs := []string{
		request(`{"jsonrpc":"2.0","id":1,"method":"session.getMessages","params":{"session":"` + sess.String() + `","limit":1000}}`),
		request(`{"jsonrpc":"2.0","id":1,"method":"session.getInbox","params":{"sessionId":"` + e.bob.SessionID + `","limit":1000}}`),
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var peak atomic.Int64
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			if n := h.resp.inUse(); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	for i := 0; i < clients; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte(reqs[i%2])); err != nil {
			t.Fatal(err)
		}
	}

	// Meanwhile, small requests are answered.
	sent := 0
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		t0 := time.Now()
		if _, err := e.client.Status(ctx); err != nil {
			t.Fatalf("status while %d clients do not read: %v", clients, err)
		}
		if _, err := e.client.Send(ctx, e.bob, sess, []byte(fmt.Sprint("small ", sent))); err != nil {
			t.Fatalf("sendMessage while %d clients do not read: %v", clients, err)
		}
		if d := time.Since(t0); d > 5*time.Second {
			t.Fatalf("status and sendMessage took %v", d)
		}
		sent++
		time.Sleep(50 * time.Millisecond) // few writes: the chain's own growth stays out of the figure
	}
	during, rssDuring := liveBytes(), rssBytes()
	close(stop)
	watch.Wait()

	bound := int64(budget) + clients*perConnBound + 8<<20 // 8 MiB: the test's own churn
	t.Logf("%d clients not reading pages of ~%d KB: live memory +%.1f MB (bound %.1f MB; unbounded it would be ~%.0f MB), RSS +%.1f MB, budget peak %.1f of %.1f MB; %d status+sendMessage pairs answered",
		clients, pageJSON>>10, float64(during-before)/1e6, float64(bound)/1e6, float64(clients*pageJSON)/1e6,
		float64(rssDuring-rssBefore)/1e6, float64(peak.Load())/1e6, float64(budget)/1e6, sent)
	if during-before > bound {
		t.Fatalf("live memory grew by %d bytes with %d non-reading clients, above the bound %d", during-before, clients, bound)
	}
	if peak.Load() < budget/2 {
		t.Fatalf("the response budget peaked at %d of %d: the scenario did not load it", peak.Load(), budget)
	}

	// Gone clients give their bytes back.
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	for deadline := time.Now().Add(10 * time.Second); h.resp.inUse() > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d response bytes still held after the clients left", h.resp.inUse())
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = http.StatusOK
}

// TestConnectionCost measures what an open connection costs the process
// (its goroutine and stack, read and write buffers) after a request, idle
// in keep-alive, and checks it against perConnBound.
func TestConnectionCost(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 400 connections")
	}
	e := newEnv(t)
	addr := e.srv.Listener.Addr().String()
	body := statusRequest
	req := "POST / HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
	const n = 400
	before := liveBytes()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 4096)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf), "HTTP/1.1 200") {
			t.Fatalf("connection %d: %v %.40q", i, err, buf)
		}
	}
	// The client side's connections are in this process too: each holds
	// a net.Conn (no buffers), a small share of the figure.
	per := (liveBytes() - before) / n
	t.Logf("an idle connection after a request costs %d bytes (bound %d)", per, perConnBound)
	if per > perConnBound {
		t.Fatalf("a connection costs %d bytes, above %d", per, perConnBound)
	}
}

const statusRequest = `{"jsonrpc":"2.0","id":1,"method":"session.status"}`

// TestBodyBudget: request bodies are held against the body budget as
// their bytes arrive (a client declaring a large body holds what it sent,
// not what it declared); when the budget is full, a request is answered
// 503 busy; when the bodies are done, requests are served again.
func TestBodyBudget(t *testing.T) {
	e := newEnvWith(t, envOpts{handler: Options{BodyBudget: 2 * (MaxBodySize + 1), BusyWait: 200 * time.Millisecond}})
	h := e.h.(*handler)
	addr := e.srv.Listener.Addr().String()
	slow := func(sent int) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		head := "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(MaxBodySize-1) + "\r\n\r\n"
		if _, err := c.Write([]byte(head + strings.Repeat(" ", sent))); err != nil {
			t.Fatal(err)
		}
		return c
	}
	waitHeld := func(cond func(int64) bool) int64 {
		for deadline := time.Now().Add(5 * time.Second); ; {
			if n := h.body.inUse(); cond(n) || time.Now().After(deadline) {
				return n
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	c1 := slow(10)
	defer c1.Close()
	if n := waitHeld(func(n int64) bool { return n > 0 }); n == 0 || n > 2*bodyPoolSize {
		t.Fatalf("a client that declared %d bytes and sent 10 holds %d of the body budget", MaxBodySize-1, n)
	}
	c1.Close()
	waitHeld(func(n int64) bool { return n == 0 })

	c2 := slow(700 << 10) // the buffer grows to 1 MiB: the whole budget
	defer c2.Close()
	waitHeld(func(n int64) bool { return n >= 2*MaxBodySize })
	r := post(t, e.h, http.MethodPost, "application/json", []byte(statusRequest))
	if r.Status != http.StatusServiceUnavailable || r.Error == nil || r.Error.Code != CodeBusy || r.Header.Get("Retry-After") == "" {
		t.Fatalf("with the body budget held: HTTP %d, %+v, Retry-After %q", r.Status, r.Error, r.Header.Get("Retry-After"))
	}
	c2.Close()
	waitHeld(func(n int64) bool { return n == 0 })
	if r := post(t, e.h, http.MethodPost, "application/json", []byte(statusRequest)); r.Status != http.StatusOK || r.Error != nil {
		t.Fatalf("after the slow body left: HTTP %d, %+v", r.Status, r.Error)
	}
}
