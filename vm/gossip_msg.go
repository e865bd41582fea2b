package vm

import (
	"errors"
	"fmt"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/state/codec"
)

// Gossip message format (app gossip between nodes of one chain):
//
//	version u8 (1) | kind u8 (1: transactions) | count u32 (1..MaxGossipTxs)
//	| count × (length u32 (≤ config.MaxTxSize) | signed transaction)
//
// A message is at most NodeConfig.GossipMaxMessageBytes. The framing is
// checked before any transaction is parsed; each transaction is then parsed
// and checked on its own, so one bad transaction costs only itself.
const (
	gossipVersion byte = 1
	gossipKindTxs byte = 1
	// gossipHeaderSize is version, kind and count.
	gossipHeaderSize = 1 + 1 + 4
	// MaxGossipTxs bounds the transactions of one gossip message.
	MaxGossipTxs = 4096
)

// ErrBadGossip reports a gossip message that does not decode.
var ErrBadGossip = errors.New("malformed gossip message")

// encodeGossip packs transactions (signed bytes) into as few messages of at
// most maxBytes as their order allows. A transaction larger than a message
// can hold is skipped (the node-local limit is at least config.MaxTxSize
// plus the framing, so this does not happen with a valid configuration).
func encodeGossip(txs [][]byte, maxBytes int) [][]byte {
	var out [][]byte
	var w *codec.Writer
	count := 0
	flush := func() {
		if count == 0 {
			return
		}
		b := w.B
		b[2], b[3], b[4], b[5] = byte(count>>24), byte(count>>16), byte(count>>8), byte(count)
		out = append(out, b)
		w, count = nil, 0
	}
	for _, t := range txs {
		need := 4 + len(t)
		if gossipHeaderSize+need > maxBytes {
			continue
		}
		if w != nil && (len(w.B)+need > maxBytes || count == MaxGossipTxs) {
			flush()
		}
		if w == nil {
			w = codec.NewWriter(min(maxBytes, gossipHeaderSize+need*len(txs)))
			w.U8(gossipVersion)
			w.U8(gossipKindTxs)
			w.U32(0) // the count, set by flush
		}
		w.Bytes(t)
		count++
	}
	flush()
	return out
}

// decodeGossip returns the transaction byte strings of a message (aliasing
// msg), after checking the framing: version, kind, count and lengths, with
// nothing left over, and no entry shorter than minEntry.
func decodeGossip(msg []byte, minEntry int) ([][]byte, error) {
	r := codec.NewReader(msg)
	version, kind := r.U8(), r.U8()
	if r.Err() == nil && version != gossipVersion {
		return nil, fmt.Errorf("%w: version %d", ErrBadGossip, version)
	}
	if r.Err() == nil && kind != gossipKindTxs {
		return nil, fmt.Errorf("%w: kind %d", ErrBadGossip, kind)
	}
	n := r.Count(MaxGossipTxs, "transactions")
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadGossip, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: no transactions", ErrBadGossip)
	}
	// Each entry takes its length field and at least minEntry bytes: bound
	// n by the input before allocating.
	if n > r.Remaining()/(4+minEntry) {
		return nil, fmt.Errorf("%w: %d transactions cannot fit in %d bytes", ErrBadGossip, n, r.Remaining())
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = r.Bytes(config.MaxTxSize, "transaction")
		if r.Err() == nil && len(out[i]) < minEntry {
			// No transaction is that short. Refused here, such entries
			// would each take a token of the inbound budgets for 4 bytes.
			return nil, fmt.Errorf("%w: an entry of %d bytes, under the smallest transaction (%d)", ErrBadGossip, len(out[i]), minEntry)
		}
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadGossip, err)
	}
	return out, nil
}
