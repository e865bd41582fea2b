package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/node"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/vmtest"
)

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
		err  string
	}{
		{[]string{"--version"}, 0, "sessiond sessionvm/", ""},
		{[]string{"--help"}, 0, "", "-data-dir"},
		{[]string{"--bogus"}, 2, "", "-bogus"},
		{[]string{"extra"}, 2, "", "unexpected argument"},
		{[]string{"--log-level", "loud"}, 2, "", "--log-level"},
		{[]string{"--session-ttl", "x"}, 2, "", "session-ttl"},
		{[]string{"--genesis", "/nonexistent/genesis.json"}, 2, "", "--genesis"},
		{[]string{"--http-response-budget", "lots"}, 2, "", "http-response-budget"},
		{[]string{"--http-body-budget", "-1"}, 2, "", "http-body-budget"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr, nil)
		if code != tc.code || !strings.HasPrefix(stdout.String(), tc.out) || !strings.Contains(stderr.String(), tc.err) {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q", tc.args, code, stdout.String(), stderr.String())
		}
	}
}

// TestHTTPFlags: the HTTP policy flags and their environment variables
// reach the node's configuration.
func TestHTTPFlags(t *testing.T) {
	t.Setenv("SESSIOND_HTTP_ALLOWED_ORIGINS", "https://app.example, https://b.example")
	o, err := parseArgs([]string{"--http-allowed-hosts", "node.example,,other.example ", "--http-max-conns", "99",
		"--http-response-budget", "32MiB", "--http-body-budget", "4194304"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	h := o.cfg.HTTP
	if strings.Join(h.AllowedHosts, "|") != "node.example|other.example" ||
		strings.Join(h.AllowedOrigins, "|") != "https://app.example|https://b.example" ||
		h.MaxConns != 99 || h.Service.ResponseBudget != 32<<20 || h.Service.BodyBudget != 4<<20 {
		t.Fatalf("HTTP config %+v", h)
	}
	o, err = parseArgs(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.HTTP.AllowedHosts != nil || len(o.cfg.HTTP.AllowedOrigins) != 2 || o.cfg.HTTP.MaxConns != service.DefaultMaxConns {
		t.Fatalf("defaults %+v", o.cfg.HTTP)
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Setenv("SESSIOND_DATA_DIR", "")
	t.Setenv("XDG_DATA_HOME", "/xdg")
	if got := defaultDataDir(); got != "/xdg/sessiond" {
		t.Errorf("with XDG_DATA_HOME: %s", got)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := defaultDataDir(); got != "/home/u/.sessiond" {
		t.Errorf("default: %s", got)
	}
	t.Setenv("SESSIOND_DATA_DIR", "/data")
	if got := defaultDataDir(); got != "/data" {
		t.Errorf("with SESSIOND_DATA_DIR: %s", got)
	}
}

// TestRunInProcess: run starts the node, stops on the stop channel, and a
// second run refuses a conflicting genesis with exit code 1.
func TestRunInProcess(t *testing.T) {
	dir := t.TempDir()
	stop := make(chan struct{})
	close(stop)
	var stderr bytes.Buffer
	args := []string{"--data-dir", dir, "--http", "127.0.0.1:0", "--log-level", "warn", "--session-ttl", "600"}
	if code := run(args, os.Stdout, &stderr, stop); code != 0 {
		t.Fatalf("run = %d: %s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, node.GenesisFile)); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	args[len(args)-1] = "900"
	if code := run(args, os.Stdout, &stderr, stop); code != 1 || !strings.Contains(stderr.String(), "genesis") {
		t.Fatalf("run with another genesis = %d: %s", code, stderr.String())
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// sessiondBinary builds the command once per test binary.
func sessiondBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds sessiond; skipped with -short")
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sessiond-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "sessiond")
		// go test puts its own GOROOT/bin first in the PATH of subprocesses.
		goTool := "go"
		if out, err := exec.Command(goTool, "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
	url    string
}

// launch starts sessiond as a real process and waits until it answers.
func launch(t *testing.T, bin, dir string) *proc {
	t.Helper()
	addr := freeAddr(t)
	p := &proc{stderr: &bytes.Buffer{}, done: make(chan error, 1), url: "http://" + addr}
	// A new chain with the minimal registration work: these tests register
	// identities and are not about the proof of work.
	g, err := vmtest.GenesisJSON(1767225600, nil)
	if err != nil {
		t.Fatal(err)
	}
	genesisPath := filepath.Join(t.TempDir(), "genesis.json")
	if err := os.WriteFile(genesisPath, g, 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "--data-dir", dir, "--log-level", "info", "--genesis", genesisPath)
	p.cmd.Env = append(os.Environ(), "SESSIOND_HTTP="+addr) // the env var, not the flag
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("sessiond exited early: %v\n%s", err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessiond not up after 30s: %v\n%s", err, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// terminate sends SIGTERM and expects a clean exit.
func (p *proc) terminate(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("sessiond exit after SIGTERM: %v\n%s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("sessiond still running 30s after SIGTERM\n%s", p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "sessiond stopped") {
		t.Fatalf("no clean-stop log line:\n%s", p.stderr)
	}
}

// TestProcessSIGTERMRestart runs sessiond as a user does: messages sent
// over HTTP, SIGTERM, start again on the same data directory, history
// intact.
func TestProcessSIGTERMRestart(t *testing.T) {
	bin := sessiondBinary(t)
	dir := t.TempDir()
	p := launch(t, bin, dir)
	ctx := context.Background()
	c := service.NewClient(p.url+"/rpc", service.WithPollInterval(5*time.Millisecond))

	var ids []*crypto.Identity
	for i := range 2 {
		var seed [32]byte
		seed[0], seed[1] = 0xd0, byte(i)
		id, err := crypto.IdentityFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	wait := func(c *service.Client, r *service.TxReply, err error) *service.TxStatusReply {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.WaitAccepted(ctx, r.TxID)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, id := range ids {
		r, err := c.Register(ctx, id)
		wait(c, r, err)
	}
	r, err := c.CreateSession(ctx, ids[0], ids[1].SessionID)
	wait(c, r, err)
	session := r.Session
	for i := range 4 {
		r, err := c.Send(ctx, ids[i%2], session, fmt.Appendf(nil, "m%d", i))
		wait(c, r, err)
	}
	before, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.terminate(t)
	if _, err := http.Get(p.url + "/health"); err == nil {
		t.Fatal("still serving after exit")
	}

	p2 := launch(t, bin, dir)
	c2 := service.NewClient(p2.url+"/rpc", service.WithPollInterval(5*time.Millisecond))
	after, err := c2.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Height != before.Height || after.LastAcceptedID != before.LastAcceptedID || after.ChainID != before.ChainID {
		t.Fatalf("after restart %+v, before %+v", after, before)
	}
	msgs, err := c2.Messages(ctx, session, 0, 10)
	if err != nil || len(msgs.Messages) != 4 || string(msgs.Messages[3].Ciphertext) != "m3" {
		t.Fatalf("after restart: %v, %v", msgs, err)
	}
	r, err = c2.Send(ctx, ids[1], session, []byte("m4"))
	if st := wait(c2, r, err); st.Height != before.Height+1 {
		t.Fatalf("next block at %d, want %d", st.Height, before.Height+1)
	}
	p2.terminate(t)
}

// TestProcessSIGKILLKeepsAccepted: killed without warning during a burst,
// the node restarts with every transaction it had reported accepted.
func TestProcessSIGKILLKeepsAccepted(t *testing.T) {
	bin := sessiondBinary(t)
	dir := t.TempDir()
	p := launch(t, bin, dir)
	ctx := context.Background()
	c := service.NewClient(p.url+"/rpc", service.WithPollInterval(5*time.Millisecond))
	var seed [32]byte
	seed[0] = 0xd1
	alice, err := crypto.IdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	seed[1] = 1
	bob, err := crypto.IdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	var last *service.TxReply
	for _, id := range []*crypto.Identity{alice, bob} {
		if last, err = c.Register(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.WaitAccepted(ctx, last.TxID); err != nil {
		t.Fatal(err)
	}
	r, err := c.CreateSession(ctx, alice, bob.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitAccepted(ctx, r.TxID); err != nil {
		t.Fatal(err)
	}
	session := r.Session
	// Bob accepts: a request takes only a few messages (docs/chain.md
	// section 5).
	if r, err = c.AcceptSession(ctx, bob, session); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitAccepted(ctx, r.TxID); err != nil {
		t.Fatal(err)
	}

	// A burst; as soon as some are reported accepted, SIGKILL.
	var sent []*service.TxReply
	for i := range 40 {
		r, err := c.Send(ctx, alice, session, fmt.Appendf(nil, "burst %d", i))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, r)
	}
	var accepted []*service.TxReply
	deadline := time.Now().Add(30 * time.Second)
	for len(accepted) == 0 && time.Now().Before(deadline) {
		for _, r := range sent {
			if st, err := c.TxStatus(ctx, r.TxID); err == nil && st.Status == service.TxAccepted {
				accepted = append(accepted, r)
			}
		}
	}
	if len(accepted) == 0 {
		t.Fatal("nothing accepted in 30s")
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done

	p2 := launch(t, bin, dir)
	c2 := service.NewClient(p2.url+"/rpc", service.WithPollInterval(5*time.Millisecond))
	for _, r := range accepted {
		st, err := c2.TxStatus(ctx, r.TxID)
		if err != nil || st.Status != service.TxAccepted {
			t.Fatalf("tx %s was reported accepted before SIGKILL; after restart: %+v, %v", r.TxID, st, err)
		}
	}
	msgs, err := c2.Messages(ctx, session, 0, 100)
	if err != nil || len(msgs.Messages) < len(accepted) {
		t.Fatalf("after restart: %d messages, %v; %d were reported accepted", len(msgs.Messages), err, len(accepted))
	}
	p2.terminate(t)
}

// TestDebugHTTP: --debug-http serves net/http/pprof (an execution trace
// here) on a loopback address for as long as the node runs, and refuses
// any other address.
func TestDebugHTTP(t *testing.T) {
	var stderr bytes.Buffer
	for _, addr := range []string{"0.0.0.0:6060", "192.0.2.1:6060", ":6060", "node.example:6060", "127.0.0.1"} {
		stderr.Reset()
		if code := run([]string{"--debug-http", addr}, io.Discard, &stderr, nil); code != 2 || !strings.Contains(stderr.String(), "--debug-http") {
			t.Errorf("--debug-http %s: exit %d, %s", addr, code, stderr.String())
		}
	}
	freeAddr := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	addr, api := freeAddr(), freeAddr()
	stop := make(chan struct{})
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"--data-dir", t.TempDir(), "--http", api, "--log-level", "warn", "--debug-http", addr}, io.Discard, io.Discard, stop)
	}()
	get := func(path string) ([]byte, error) {
		if !strings.HasPrefix(path, "http:") {
			path = "http://" + addr + path
		}
		resp, err := http.Get(path)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
		}
		return b, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := get("/debug/pprof/cmdline"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("profiling endpoint not up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	trace, err := get("/debug/pprof/trace?seconds=0.2")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(trace, []byte("go 1.")) {
		t.Fatalf("not an execution trace: %.40q", trace)
	}
	goroutines, err := get("/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(goroutines, []byte("luxfi/session/node.")) {
		t.Fatal("goroutine profile shows no node goroutine")
	}
	// net/http/pprof registers itself on http.DefaultServeMux too: the
	// API's address must not serve it.
	if _, err := get("http://" + api + "/health"); err != nil {
		t.Fatalf("API: %v", err)
	}
	if _, err := get("http://" + api + "/debug/pprof/cmdline"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("the API's address answers /debug/pprof/cmdline: %v", err)
	}
	close(stop)
	if code := <-done; code != 0 {
		t.Fatalf("run = %d", code)
	}
	if _, err := get("/debug/pprof/cmdline"); err == nil {
		t.Fatal("profiling endpoint still served after the node stopped")
	}
}

// TestDebugHTTPRefusesOtherSites: the profiling endpoint listens on
// loopback, which a browser on the machine reaches for any page. A
// DNS-rebinding page (its own name in Host) could read the profiles, and
// an <img> or a fetch of any site could start a ten-minute CPU profile or
// trace; both are refused, while go tool pprof, curl and a typed URL are
// served.
func TestDebugHTTPRefusesOtherSites(t *testing.T) {
	h := debugServer().Handler
	for _, tc := range []struct {
		host   string
		header map[string]string
		ok     bool
	}{
		{"127.0.0.1:6060", nil, true},
		{"localhost:6060", nil, true},
		{"LOCALHOST", nil, true},
		{"[::1]:6060", nil, true},
		{"127.0.0.1:6060", map[string]string{"Sec-Fetch-Site": "none"}, true},
		{"127.0.0.1:6060", map[string]string{"Sec-Fetch-Site": "same-origin"}, true},
		{"rebind.example:6060", nil, false},
		{"localhost.rebind.example", nil, false},
		{"192.0.2.1:6060", nil, false},
		{"127.0.0.1:6060", map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
		{"127.0.0.1:6060", map[string]string{"Sec-Fetch-Site": "same-site"}, false},
		{"127.0.0.1:6060", map[string]string{"Origin": "https://evil.example"}, false},
		{"127.0.0.1:6060", map[string]string{"Origin": "null"}, false},
	} {
		req := httptest.NewRequest(http.MethodGet, "/debug/pprof/cmdline", nil)
		req.Host = tc.host
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got := rec.Code == http.StatusOK; got != tc.ok {
			t.Errorf("Host %q, %v: HTTP %d, want served %v", tc.host, tc.header, rec.Code, tc.ok)
		}
	}
}
