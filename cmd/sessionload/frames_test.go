package main

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/mempool"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

// recordingAPI admits transactions in the order given, refusing the
// one with ID full as the mempool would when it is full.
type recordingAPI struct {
	vm.API
	mu     sync.Mutex
	issued []ids.ID
	full   ids.ID
}

func (a *recordingAPI) Issue(t *tx.Tx) error {
	if t.ID() == a.full {
		return mempool.ErrFull
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.issued = append(a.issued, t.ID())
	return nil
}

// TestFramesPrototype checks the framing prototype that
// BenchmarkIngest/paired/frames* and `sessionload --frames` measure:
// pipelined requests are admitted and answered in order, a refusal is
// reported as the node's error (and the requests after it are still
// answered), a request that is not issueTx is refused, and a frame over
// the limit ends the connection.
func TestFramesPrototype(t *testing.T) {
	a := vmtest.Identities(0xf7, 1)[0]
	chain := ids.ID{0xf7}
	var txs []*tx.Tx
	for n := range 4 {
		signed, err := tx.Sign(a, chain, uint64(n), &tx.SendMessage{Session: ids.ID{1}, Ciphertext: []byte("frame")})
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, signed)
	}
	api := &recordingAPI{full: txs[3].ID()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveFrames(ln, api)

	fc, err := dialFrames(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer fc.close()
	bodies := [][]byte{issueBody(1, txs[0].Bytes()), issueBody(2, txs[1].Bytes()), issueBody(3, txs[2].Bytes())}
	if n, err := fc.issue(bodies); n != 3 || err != nil {
		t.Fatalf("three pipelined frames: %d admitted, %v", n, err)
	}
	if len(api.issued) != 3 || api.issued[0] != txs[0].ID() || api.issued[1] != txs[1].ID() || api.issued[2] != txs[2].ID() {
		t.Fatalf("issued %v, want the three in order", api.issued)
	}

	// A refusal in the middle: the ones before it count as admitted, its
	// error is the node's, and the connection goes on.
	refused := [][]byte{issueBody(4, txs[0].Bytes()), issueBody(5, txs[3].Bytes()), issueBody(6, txs[1].Bytes())}
	if n, err := fc.issue(refused); n != 1 || !errors.Is(err, service.ErrMempoolFull) {
		t.Fatalf("refused in the middle: %d admitted, %v", n, err)
	}
	notIssue := []byte(`{"jsonrpc":"2.0","id":7,"method":"session.status","params":{}}`)
	var se *service.Error
	if n, err := fc.issue([][]byte{notIssue}); n != 0 || !errors.As(err, &se) || se.Code != -32600 {
		t.Fatalf("not issueTx: %d admitted, %v", n, err)
	}
	if n, err := fc.issue([][]byte{issueBody(8, []byte("not a transaction"))}); n != 0 || !errors.As(err, &se) || se.Code != -32013 {
		t.Fatalf("not a transaction: %d admitted, %v", n, err)
	}

	// A frame over the limit: the node closes the connection without
	// reading it.
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], maxFrame+1)
	if _, err := fc.c.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	_ = fc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := fc.br.ReadByte(); err == nil {
		t.Fatal("an oversize frame was answered")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection stayed open after an oversize frame")
	}
}
