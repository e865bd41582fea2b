package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/node"
	"github.com/luxfi/session/service"
)

func startNode(t *testing.T) *node.Node { return startNodeWith(t, nil) }

func startNodeWith(t *testing.T, vmConfig []byte) *node.Node {
	t.Helper()
	work := config.MinimalRegistration() // not about the registration work
	n, err := node.Start(node.Config{
		DataDir:        t.TempDir(),
		HTTPAddr:       "127.0.0.1:0",
		ChainOverrides: node.ChainOverrides{Registration: &work},
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		VMConfig:       vmConfig,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	return n
}

func checkResult(t *testing.T, r *Result) {
	t.Helper()
	if r.Accepted == 0 || r.Accepted != r.Submitted || r.Errors != 0 {
		t.Fatalf("accepted %d of %d submitted, %d errors", r.Accepted, r.Submitted, r.Errors)
	}
	if !r.Verified {
		t.Fatal("the chain's messages were not verified against the accepted ones")
	}
	if !(r.P50 > 0 && r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) {
		t.Fatalf("inconsistent latencies: p50 %v p90 %v p99 %v max %v", r.P50, r.P90, r.P99, r.Max)
	}
	// Not bounded by the acceptance latencies: the watcher can see a
	// message accepted before its sender has read the response that
	// admitted it (CI saw an admission p99 of 125.5 ms against an
	// acceptance maximum of 117.5 ms through the batch test's proxy).
	if !(r.AdmitP50 > 0 && r.AdmitP50 <= r.AdmitP99) {
		t.Fatalf("inconsistent admission latencies: p50 %v p99 %v", r.AdmitP50, r.AdmitP99)
	}
	// The raw primitive is measured on both sides of the timed phase (an
	// ML-DSA-65 verification takes tens of µs; under a millisecond even
	// with -race), and the bound share follows from it.
	for _, v := range []float64{r.VerifyMicrosBefore, r.VerifyMicrosAfter} {
		if !(v > 0 && v < 5000) {
			t.Fatalf("ML-DSA-65 verify probe: %v µs before, %v µs after", r.VerifyMicrosBefore, r.VerifyMicrosAfter)
		}
	}
	// The host's fresh-page cost: a page fault and a 4 KiB clear, from
	// well under a µs to tens of µs by host, never zero or a millisecond.
	if !(r.FreshPageMicros > 0 && r.FreshPageMicros < 1000) {
		t.Fatalf("fresh-page probe: %v µs a page", r.FreshPageMicros)
	}
	if want := r.Throughput / (float64(r.Cores) * 1e6 / ((r.VerifyMicrosBefore + r.VerifyMicrosAfter) / 2)); r.VerifyBoundShare != want {
		t.Fatalf("verify-bound share %v, want %v", r.VerifyBoundShare, want)
	}
	// Throughput counts what was accepted while sending, which a short
	// run may finish before the first block: it may be 0.
	if r.Throughput < 0 || r.OverallRate <= 0 || r.Blocks == 0 || r.TxsPerBlk < 1 {
		t.Fatalf("no throughput: %+v", r)
	}
	// 256-byte payload + 32-byte session + claim count + 4-byte length +
	// header + signature.
	if r.TxBytes != 256+32+1+4+75+3309 {
		t.Fatalf("tx size %d", r.TxBytes)
	}
}

// TestRunMaxThroughput runs the generator's core briefly against an
// in-process node: every submitted message is seen accepted, the chain
// holds exactly those, and the latency figures are ordered.
func TestRunMaxThroughput(t *testing.T) {
	n := startNode(t)
	var log bytes.Buffer
	r, err := Run(context.Background(), Config{URL: n.URL(), Clients: 4, Duration: 400 * time.Millisecond, MaxTxs: 160, Verify: true, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	checkResult(t, r)
	if r.Signed != 160 || r.Submitted > r.Signed {
		t.Fatalf("signed %d, submitted %d", r.Signed, r.Submitted)
	}
	if !strings.Contains(log.String(), "signed 160 messages") {
		t.Fatalf("log: %s", log.String())
	}
	st, err := service.NewClient(n.URL()).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The sink, 4 senders and their sessions, then the messages.
	if st.MessagesStored != uint64(r.Accepted) || st.Identities != 5 || st.Sessions != 4 {
		t.Fatalf("status %+v after %d messages", st, r.Accepted)
	}
}

// TestRunBatches: with --batch, clients send several messages per
// request, within their window; a batch the mempool cuts short is sent
// again from the first message refused; everything is accepted in order.
func TestRunBatches(t *testing.T) {
	n := startNode(t)
	// A proxy that cuts the first batches of issueTx calls short, as a
	// full mempool does: the first half of the calls reach the node, the
	// rest are answered mempool full.
	var cut atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var calls []json.RawMessage
		if json.Unmarshal(body, &calls) != nil || len(calls) < 4 || !bytes.Contains(body, []byte("session.issueTx")) || cut.Add(1) > 5 {
			forward(t, w, n.URL(), body)
			return
		}
		half := len(calls) / 2
		front, _ := json.Marshal(calls[:half])
		resp, err := http.Post(n.URL(), "application/json", bytes.NewReader(front))
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		var out []json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Error(err)
			return
		}
		for range calls[half:] {
			out = append(out, json.RawMessage(`{"jsonrpc":"2.0","id":0,"error":{"code":-32006,"message":"mempool full"}}`))
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	defer proxy.Close()
	var log bytes.Buffer
	r, err := Run(context.Background(), Config{URL: proxy.URL, Clients: 3, Duration: 20 * time.Second, MaxTxs: 150,
		Batch: 16, Window: 12, Verify: true, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	checkResult(t, r)
	if r.Submitted != 150 || r.Requests >= r.Submitted || r.Requests < r.Submitted/12 {
		t.Fatalf("%d messages in %d requests (batches of up to 16 within a window of 12)", r.Submitted, r.Requests)
	}
	if r.Retries != 5 {
		t.Fatalf("%d retries, want 5 (the batches cut short)", r.Retries)
	}
	t.Logf("%d messages in %d requests, %d retries", r.Submitted, r.Requests, r.Retries)

	// At a fixed rate, a batch holds what is due.
	r, err = Run(context.Background(), Config{URL: n.URL(), Clients: 2, Duration: time.Second, Rate: 100, Batch: 32, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r)
	// Never faster than the rate (plus one batch); how much slower depends
	// on the machine's load, so the lower bound is only that it sent.
	if r.Submitted < 1 || float64(r.Submitted) > 100*r.SendSecs+32 {
		t.Fatalf("at 100 msgs/s with batches of 32 for %.2fs: %d submitted", r.SendSecs, r.Submitted)
	}
}

// TestRunFixedRate checks that the fixed-rate mode sends about rate ×
// duration messages, not more.
func TestRunFixedRate(t *testing.T) {
	n := startNode(t)
	r, err := Run(context.Background(), Config{URL: n.URL(), Clients: 3, Duration: time.Second, Rate: 60, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r)
	// Never faster than the rate (plus one message per client); how much
	// slower depends on the machine's load, so the lower bound is only that
	// it sent.
	if r.Submitted < 1 || float64(r.Submitted) > 60*r.SendSecs+3 {
		t.Fatalf("at 60 msgs/s for %.2fs: %d submitted", r.SendSecs, r.Submitted)
	}
	if r.TargetRate != 60 {
		t.Fatalf("target rate %v", r.TargetRate)
	}
	// The timeline accounts for every accepted message once, by the
	// second of its (scheduled) submission within the timed phase.
	total, last := 0, -1
	for _, s := range r.Timeline {
		if s.At <= last || float64(s.At) > r.SendSecs || s.Accepted < 1 || s.P50 > s.P99 || s.P99 > s.Max || s.Max > r.Max {
			t.Fatalf("timeline second %+v (after second %d; %.2fs sent, max %.1f ms)", s, last, r.SendSecs, r.Max)
		}
		total, last = total+s.Accepted, s.At
	}
	if total != r.Accepted {
		t.Fatalf("timeline counts %d messages, %d accepted", total, r.Accepted)
	}
	var out bytes.Buffer
	report(&out, r, true, false)
	var back Result
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back.Accepted != r.Accepted || back.Timeline != nil {
		t.Fatalf("JSON report: %v\n%s", err, out.String())
	}
	out.Reset()
	report(&out, r, true, true)
	back = Result{}
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || len(back.Timeline) != len(r.Timeline) {
		t.Fatalf("JSON report with the timeline: %v\n%s", err, out.String())
	}
	out.Reset()
	report(&out, r, false, false)
	if !strings.Contains(out.String(), "fixed rate 60 msgs/s") || !strings.Contains(out.String(), "p99") || strings.Contains(out.String(), "submitted in second") {
		t.Fatalf("text report: %s", out.String())
	}
	out.Reset()
	report(&out, r, false, true)
	if got := strings.Count(out.String(), "\n"); !strings.Contains(out.String(), "submitted in second") || got < 6+len(r.Timeline) {
		t.Fatalf("text report with the timeline (%d lines, %d seconds): %s", got, len(r.Timeline), out.String())
	}
}

func TestRunRefusesNoNode(t *testing.T) {
	_, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1/rpc", Clients: 2, Duration: time.Millisecond})
	if err == nil {
		t.Fatal("no error without a node")
	}
}

func TestPercentile(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct{ p, want float64 }{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {1, 1}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty")
	}
}

// TestRunCommand drives the command line against an in-process node.
func TestRunCommand(t *testing.T) {
	n := startNode(t)
	var out, errb bytes.Buffer
	code := run([]string{"--node", n.URL(), "--clients", "2", "--duration", "200ms", "--max-txs", "40", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	checkResult(t, &r)
	if code := run([]string{"--clients", "x"}, &out, &errb); code != 2 {
		t.Fatalf("bad flag: exit %d", code)
	}
	if code := run([]string{"--node", "http://127.0.0.1:1/rpc", "--duration", "1ms"}, &out, &errb); code != 1 {
		t.Fatalf("no node: exit %d", code)
	}
}

// forward posts body to url and copies the answer to w.
func forward(t *testing.T, w http.ResponseWriter, url string, body []byte) {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// TestRunWebSocket: with WebSocket, the senders submit over the node's
// streaming transport, a batch's messages as pipelined requests (each
// request one message), and everything is accepted in order.
func TestRunWebSocket(t *testing.T) {
	n := startNode(t)
	var log bytes.Buffer
	r, err := Run(context.Background(), Config{URL: n.URL(), WebSocket: true, Clients: 3, Duration: 20 * time.Second, MaxTxs: 120,
		Batch: 16, Window: 32, Verify: true, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	checkResult(t, r)
	if r.Submitted != 120 || r.Requests >= r.Submitted {
		t.Fatalf("%d messages in %d pipelined groups (up to 16 each)", r.Submitted, r.Requests)
	}
	// A node that does not serve the transport: the run says so.
	if _, err := dialWS(context.Background(), "http://"+strings.TrimPrefix(n.URL(), "http://")+"x"); err == nil {
		t.Fatal("a WebSocket to a path the node does not serve")
	}
}
