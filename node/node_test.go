package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/genesis"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func start(t *testing.T, cfg Config) *Node {
	t.Helper()
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, GenesisFile)); err != nil && cfg.Genesis == nil && cfg.ChainOverrides.Empty() {
		// A new chain: these tests register identities and are not about
		// the work.
		cfg.ChainOverrides.Registration = minimalWork()
	}
	n, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	return n
}

func stop(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// The port is released.
	if _, err := http.Get("http://" + n.Addr() + "/health"); err == nil {
		t.Fatal("HTTP still served after Shutdown")
	}
}

var (
	idsOnce sync.Once
	testIDs []*crypto.Identity
)

func identity(t *testing.T, i int) *crypto.Identity {
	t.Helper()
	idsOnce.Do(func() {
		for n := range 3 {
			var seed [32]byte
			seed[0], seed[1] = 0x5e, byte(n)
			id, err := crypto.IdentityFromSeed(seed)
			if err != nil {
				panic(err)
			}
			testIDs = append(testIDs, id)
		}
	})
	return testIDs[i]
}

func client(n *Node) *service.Client {
	return service.NewClient(n.URL(), service.WithPollInterval(5*time.Millisecond))
}

func waitAccepted(t *testing.T, c *service.Client, r *service.TxReply, err error) *service.TxStatusReply {
	t.Helper()
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.WaitAccepted(ctx, r.TxID)
	if err != nil {
		t.Fatalf("WaitAccepted(%s %s): %v", r.Type, r.TxID, err)
	}
	return st
}

// scrape reads the node's /metrics into name{labels} -> value.
func scrape(t *testing.T, n *Node) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestNodeEndToEnd: a user's first run. Two identities register and talk
// over HTTP through the service client; metrics and health report the
// chain; a clean shutdown and a restart keep all history, and the chain
// goes on from where it stopped.
func TestNodeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	n := start(t, Config{DataDir: dir})
	c := client(n)
	ctx := context.Background()

	chainID, err := c.ChainID(ctx)
	if err != nil || chainID != n.ChainID() {
		t.Fatalf("ChainID over HTTP = %s, %v; node says %s", chainID, err, n.ChainID())
	}
	alice, bob := identity(t, 0), identity(t, 1)
	for _, id := range []*crypto.Identity{alice, bob} {
		r, err := c.Register(ctx, id)
		waitAccepted(t, c, r, err)
	}
	r, err := c.CreateSession(ctx, alice, bob.SessionID)
	waitAccepted(t, c, r, err)
	session := r.Session

	// A burst from both sides at once.
	const perSide = 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*perSide)
	replies := make(chan *service.TxReply, 2*perSide)
	for _, id := range []*crypto.Identity{alice, bob} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSide {
				r, err := c.Send(ctx, id, session, fmt.Appendf(nil, "%s #%d", id.SessionID[:8], i))
				if err != nil {
					errs <- err
					return
				}
				replies <- r
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(replies)
	for err := range errs {
		t.Fatalf("Send: %v", err)
	}
	var lastHeight uint64
	for r := range replies {
		st := waitAccepted(t, c, r, nil)
		lastHeight = max(lastHeight, st.Height)
	}
	msgs, err := c.Messages(ctx, session, 0, 100)
	if err != nil || len(msgs.Messages) != 2*perSide {
		t.Fatalf("Messages: %d, %v; want %d", len(msgs.Messages), err, 2*perSide)
	}

	status, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status.Height < 3 || status.Height > 3+2*perSide {
		t.Fatalf("height %d after 3 + a burst of %d", status.Height, 2*perSide)
	}
	m := scrape(t, n)
	for name, want := range map[string]float64{
		"sessiond_height":                   float64(status.Height),
		"sessiond_messages_accepted_total":  2 * perSide,
		"sessiond_txs_accepted_total":       2*perSide + 3,
		"sessiond_blocks_accepted_total":    float64(status.Height),
		"sessiond_identities":               2,
		"sessiond_mempool_txs":              0,
		"sessiond_disk_admitting":           1,
		"sessiond_block_build_errors_total": 0,
	} {
		if m[name] != want {
			t.Errorf("metric %s = %v, want %v", name, m[name], want)
		}
	}
	if m["sessiond_block_verify_seconds_count"] != float64(status.Height) || m["sessiond_block_build_seconds_count"] != float64(status.Height) {
		t.Errorf("block timing histograms: verify %v build %v observations, want %d",
			m["sessiond_block_verify_seconds_count"], m["sessiond_block_build_seconds_count"], status.Height)
	}
	// The database's figures: every accepted block's bytes are in the
	// value log (more than the messages' signed transactions), the LSM has
	// files, and nothing is stalled.
	if v := m["sessiond_db_value_log_bytes"]; v < 2*perSide*3000 {
		t.Errorf("sessiond_db_value_log_bytes = %v after %d messages", v, 2*perSide)
	}
	if _, ok := m["sessiond_db_compactions_total"]; !ok || m["sessiond_db_lsm_bytes"] <= 0 || m["sessiond_db_l0_files"] >= 32 {
		t.Errorf("database metrics: lsm %v, l0 %v, compactions present %v", m["sessiond_db_lsm_bytes"], m["sessiond_db_l0_files"], ok)
	}

	// /health and the Lux-style path.
	resp, err := http.Get("http://" + n.Addr() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Healthy bool   `json:"healthy"`
		Height  uint64 `json:"height"`
	}
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !health.Healthy || health.Height != status.Height {
		t.Fatalf("/health: HTTP %d %+v %v", resp.StatusCode, health, err)
	}
	lux := service.NewClient("http://" + n.Addr() + "/ext/bc/session/rpc")
	if st, err := lux.Status(ctx); err != nil || st.Height != status.Height {
		t.Fatalf("status at /ext/bc/session/rpc: %v, %v", st, err)
	}

	stop(t, n)
	if err := n.Shutdown(ctx); err != nil { // idempotent
		t.Fatalf("second Shutdown: %v", err)
	}

	// Restart on the same data directory, without naming the genesis.
	n2 := start(t, Config{DataDir: dir})
	c2 := client(n2)
	if n2.ChainID() != n.ChainID() {
		t.Fatalf("chain ID changed across restart: %s -> %s", n.ChainID(), n2.ChainID())
	}
	st2, err := c2.Status(ctx)
	if err != nil || st2.Height != status.Height || st2.LastAcceptedID != status.LastAcceptedID || st2.Identities != 2 {
		t.Fatalf("after restart: %+v, %v; want height %d last %s", st2, err, status.Height, status.LastAcceptedID)
	}
	msgs2, err := c2.Messages(ctx, session, 0, 100)
	if err != nil || len(msgs2.Messages) != 2*perSide {
		t.Fatalf("after restart: %d messages, %v", len(msgs2.Messages), err)
	}
	for i := range msgs2.Messages {
		if string(msgs2.Messages[i].Ciphertext) != string(msgs.Messages[i].Ciphertext) {
			t.Fatalf("message %d changed across restart", i)
		}
	}
	r, err = c2.Send(ctx, bob, session, []byte("after restart"))
	if st := waitAccepted(t, c2, r, err); st.Height != status.Height+1 {
		t.Fatalf("first block after restart at height %d, want %d", st.Height, status.Height+1)
	}
	// The transaction's status reads the accepted index, written in the
	// block's batch; the height comes from the tip, published a moment
	// after: poll briefly.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := scrape(t, n2)["sessiond_height"]
		if got == float64(status.Height+1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessiond_height after restart = %v", got)
		}
	}
	stop(t, n2)
}

// TestShutdownBuildsPending: a transaction the node answered "pending"
// survives a clean shutdown.
func TestShutdownBuildsPending(t *testing.T) {
	dir := t.TempDir()
	// A build delay longer than the test: only Shutdown builds.
	n := start(t, Config{DataDir: dir, BuildDelay: time.Hour})
	c := client(n)
	ctx := context.Background()
	r, err := c.Register(ctx, identity(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.TxStatus(ctx, r.TxID); err != nil || st.Status != service.TxPending {
		t.Fatalf("TxStatus before shutdown = %+v, %v; want pending", st, err)
	}
	stop(t, n)

	n2 := start(t, Config{DataDir: dir})
	st, err := client(n2).TxStatus(ctx, r.TxID)
	if err != nil || st.Status != service.TxAccepted || st.Height != 1 {
		t.Fatalf("TxStatus after restart = %+v, %v; want accepted at 1", st, err)
	}
	stop(t, n2)
}

func int64p(v int64) *int64 { return &v }

// TestGenesisStoredAndEnforced: the first start stores the genesis; later
// starts use it, accept the same one (or overrides that match it), and
// refuse another with a clear error before touching the database.
func TestGenesisStoredAndEnforced(t *testing.T) {
	dir := t.TempDir()
	o := ChainOverrides{SessionTTL: int64p(3600), RetentionDays: int64p(7)}
	n := start(t, Config{DataDir: dir, ChainOverrides: o})
	stored, err := os.ReadFile(filepath.Join(dir, GenesisFile))
	if err != nil {
		t.Fatal(err)
	}
	g, err := genesis.Parse(stored)
	if err != nil {
		t.Fatal(err)
	}
	if g.Config.SessionTTL != 3600 || g.Config.RetentionDays != 7 || len(g.Nonce) != ChainNonceSize {
		t.Fatalf("stored genesis %s", stored)
	}
	if n.ChainID() != ChainIDOf(stored) || n.API().Config().SessionTTL != 3600 {
		t.Fatalf("chain %s ttl %d", n.ChainID(), n.API().Config().SessionTTL)
	}
	stop(t, n)

	for _, tc := range []struct {
		name string
		cfg  Config
		err  error
	}{
		{"stored", Config{}, nil},
		{"same overrides", Config{ChainOverrides: o}, nil},
		{"one matching override", Config{ChainOverrides: ChainOverrides{RetentionDays: int64p(7)}}, nil},
		{"same file", Config{Genesis: stored}, nil},
		{"other overrides", Config{ChainOverrides: ChainOverrides{SessionTTL: int64p(60)}}, ErrGenesisConflict},
		{"other file", Config{Genesis: []byte(`{"timestamp": 1}`)}, ErrGenesisConflict},
	} {
		tc.cfg.DataDir, tc.cfg.HTTPAddr, tc.cfg.Logger = dir, "127.0.0.1:0", quietLogger()
		n, err := Start(tc.cfg)
		if !errors.Is(err, tc.err) {
			t.Fatalf("%s: Start error %v, want %v", tc.name, err, tc.err)
		}
		if err == nil {
			if n.ChainID() != ChainIDOf(stored) {
				t.Fatalf("%s: chain %s", tc.name, n.ChainID())
			}
			stop(t, n)
		} else if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "--data-dir") {
			t.Fatalf("%s: error does not say what to do: %v", tc.name, err)
		}
	}

	if _, err := Start(Config{DataDir: t.TempDir(), Genesis: stored, ChainOverrides: o, Logger: quietLogger()}); err == nil {
		t.Fatal("Start with a genesis file and overrides succeeded")
	}
	if _, err := Start(Config{DataDir: t.TempDir(), ChainOverrides: ChainOverrides{MaxMessages: int64p(0)}, Logger: quietLogger()}); err == nil || !strings.Contains(err.Error(), "maxMessages") {
		t.Fatalf("Start with maxMessages 0: %v", err)
	}
	if _, err := Start(Config{DataDir: t.TempDir(), Genesis: []byte(`{"bogus": 1}`), Logger: quietLogger()}); err == nil {
		t.Fatal("Start with an invalid genesis succeeded")
	}
}

// minimalWork returns the minimal registration proof of work.
func minimalWork() *config.Registration {
	r := config.MinimalRegistration()
	return &r
}

// TestNewChainsHaveOwnIDs: two data directories started without a genesis
// file are two chains with two chain IDs (a transaction signed for one is
// refused by the other), each kept across restarts; a genesis file gives
// the same chain ID in every data directory.
func TestNewChainsHaveOwnIDs(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	n1 := start(t, Config{DataDir: dir1})
	n2 := start(t, Config{DataDir: dir2})
	id1, id2 := n1.ChainID(), n2.ChainID()
	if id1 == id2 {
		t.Fatalf("two new chains share the chain ID %s", id1)
	}
	// A transaction for chain 1 is refused by chain 2.
	alice := vmtest.Identities(0x6e, 1)[0]
	reg, err := tx.Sign(alice, id1, 0, &tx.RegisterIdentity{KEMPublicKey: alice.KEMPublicKey, DSAPublicKey: alice.DSAPublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n2.API().IssueTx(reg.Bytes()); !errors.Is(err, tx.ErrWrongChainID) {
		t.Fatalf("chain 2 admitted chain 1's transaction: %v", err)
	}
	stop(t, n1)
	stop(t, n2)
	n1 = start(t, Config{DataDir: dir1})
	if n1.ChainID() != id1 {
		t.Fatalf("restarted chain ID %s, want %s", n1.ChainID(), id1)
	}
	stop(t, n1)

	// The genesis of a new chain: the defaults, the creation time, a nonce.
	before := time.Now().Unix()
	b, err := NewChainGenesis(ChainOverrides{}, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	g, err := genesis.Parse(b)
	if err != nil || g.Config != config.Default() || len(g.Identities) != 0 || g.Timestamp < before || len(g.Nonce) != ChainNonceSize {
		t.Fatalf("new chain genesis %s: %v", b, err)
	}
	// Deterministic given the clock and the randomness.
	fixed := func() []byte {
		b, err := NewChainGenesis(ChainOverrides{MaxChannels: int64p(5)}, time.Unix(DefaultGenesisTimestamp, 0), bytes.NewReader(make([]byte, ChainNonceSize)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !bytes.Equal(fixed(), fixed()) || !strings.Contains(string(fixed()), `"nonce": "00000000000000000000000000000000"`) {
		t.Fatalf("genesis %s", fixed())
	}
	if _, err := NewChainGenesis(ChainOverrides{}, time.Now(), bytes.NewReader(nil)); err == nil {
		t.Fatal("no randomness, no error")
	}

	// A genesis file is reproducible: one chain ID in every data directory.
	file := []byte(`{"timestamp": 1767225600}`)
	a := start(t, Config{DataDir: t.TempDir(), Genesis: file})
	c := start(t, Config{DataDir: t.TempDir(), Genesis: file})
	if a.ChainID() != c.ChainID() || a.ChainID() != ChainIDOf(file) {
		t.Fatalf("genesis file: chains %s and %s, want %s", a.ChainID(), c.ChainID(), ChainIDOf(file))
	}
	stop(t, a)
	stop(t, c)
}

// TestSecondNodeOnSameDataDir: the database lock makes the second start
// fail with an error naming the directory.
func TestSecondNodeOnSameDataDir(t *testing.T) {
	dir := t.TempDir()
	n := start(t, Config{DataDir: dir})
	_, err := Start(Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Start on %s: %v", dir, err)
	}
	stop(t, n)
}

// TestBusyPort: a taken HTTP address fails Start and releases the data
// directory.
func TestBusyPort(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir()})
	dir := t.TempDir()
	if _, err := Start(Config{DataDir: dir, HTTPAddr: n.Addr(), Logger: quietLogger()}); err == nil {
		t.Fatal("Start on a busy port succeeded")
	}
	n2 := start(t, Config{DataDir: dir}) // the failed start closed the database
	stop(t, n2)
	stop(t, n)
}
