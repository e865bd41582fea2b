package service

import (
	"encoding/base64"
	"encoding/hex"
	"strconv"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
)

// Encoders of the replies that carry the bytes: a page of messages (up to
// a megabyte of base64) and the reply of every write. They write exactly
// what encoding/json writes for these types (TestEncodersMatchJSON), into
// one buffer sized in advance, without reflection.

// replySize returns an upper bound of the encoded size of a reply that
// has its own encoder (IDs counted at their longest), without encoding.
func replySize(v any) (int, bool) {
	switch r := v.(type) {
	case *MessagesReply:
		return messagesReplySize(r), true
	case *TxReply:
		return txReplySize(r), true
	}
	return 0, false
}

// appendReply appends a reply for which replySize returned true.
func appendReply(dst []byte, v any) []byte {
	switch r := v.(type) {
	case *MessagesReply:
		return appendMessagesReply(dst, r)
	case *TxReply:
		return appendTxReply(dst, r)
	}
	panic("service: no encoder")
}

// maxIDJSON bounds an ids.ID in its JSON form: CB58 of 36 bytes is at most
// 50 characters (36 × log 256 / log 58 < 50), plus the quotes.
const maxIDJSON = 52

func appendID(dst []byte, id ids.ID) []byte {
	dst = append(dst, '"')
	dst = appendCB58(dst, id)
	return append(dst, '"')
}

func uintLen(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

func intLen(v int64) int {
	if v < 0 {
		return 1 + uintLen(uint64(-v))
	}
	return uintLen(uint64(v))
}

// Session IDs (the authors) and the write type are plain ASCII (hex,
// method names), which encoding/json writes unchanged.

func messagesReplySize(r *MessagesReply) int {
	n := len(`{"messages":null,"next":,"more":false}`) + uintLen(r.Next)
	if len(r.Messages) > 1 {
		n += len(r.Messages) - 1 // commas
	}
	for i := range r.Messages {
		m := &r.Messages[i]
		n += len(`{"target":,"seq":,"author":"","txID":,"height":,"position":,"timestamp":,"ciphertext":""}`) +
			2*maxIDJSON + uintLen(m.Seq) + len(m.Author) + uintLen(m.Height) +
			uintLen(m.Position) + intLen(m.Timestamp) + base64.StdEncoding.EncodedLen(len(m.Ciphertext)) + 2 // "null"
	}
	return n
}

func appendMessagesReply(dst []byte, r *MessagesReply) []byte {
	if r.Messages == nil {
		dst = append(dst, `{"messages":null`...)
	} else {
		dst = append(dst, `{"messages":[`...)
		var target ids.ID
		var targetJSON []byte
		for i := range r.Messages {
			m := &r.Messages[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			if i == 0 || m.Target != target {
				target, targetJSON = m.Target, appendID(targetJSON[:0], m.Target)
			}
			dst = append(dst, `{"target":`...)
			dst = append(dst, targetJSON...)
			dst = append(dst, `,"seq":`...)
			dst = strconv.AppendUint(dst, m.Seq, 10)
			dst = append(dst, `,"author":"`...)
			dst = append(dst, m.Author...)
			dst = append(dst, `","txID":`...)
			dst = appendID(dst, m.TxID)
			dst = append(dst, `,"height":`...)
			dst = strconv.AppendUint(dst, m.Height, 10)
			dst = append(dst, `,"position":`...)
			dst = strconv.AppendUint(dst, m.Position, 10)
			dst = append(dst, `,"timestamp":`...)
			dst = strconv.AppendInt(dst, m.Timestamp, 10)
			dst = append(dst, `,"ciphertext":`...)
			if m.Ciphertext == nil {
				dst = append(dst, "null"...)
			} else {
				dst = append(dst, '"')
				dst = base64.StdEncoding.AppendEncode(dst, m.Ciphertext)
				dst = append(dst, '"')
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"next":`...)
	dst = strconv.AppendUint(dst, r.Next, 10)
	if r.More {
		return append(dst, `,"more":true}`...)
	}
	return append(dst, `,"more":false}`...)
}

func txReplySize(r *TxReply) int {
	return len(`{"txID":,"type":"","author":"","nonce":,"session":,"channel":}`) + 3*maxIDJSON +
		len(r.Type) + len(r.Author) + uintLen(r.Nonce)
}

func appendTxReply(dst []byte, r *TxReply) []byte {
	dst = append(dst, `{"txID":`...)
	dst = appendID(dst, r.TxID)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, r.Type...)
	dst = append(dst, `","author":"`...)
	dst = append(dst, r.Author...)
	return appendTxReplyEnd(dst, r.Nonce, r.Session, r.Channel)
}

func appendTxReplyEnd(dst []byte, nonce uint64, session, channel ids.ID) []byte {
	dst = append(dst, `","nonce":`...)
	dst = strconv.AppendUint(dst, nonce, 10)
	if session != ids.Empty {
		dst = append(dst, `,"session":`...)
		dst = appendID(dst, session)
	}
	if channel != ids.Empty {
		dst = append(dst, `,"channel":`...)
		dst = appendID(dst, channel)
	}
	return append(dst, '}')
}

// encodeTxResult is encodeResult(id, txReplyOf(t)) without building the
// reply's strings: the response object of an admitted transaction.
func encodeTxResult(id []byte, t *tx.Tx) []byte {
	const head, mid = `{"jsonrpc":"2.0","result":`, `,"id":`
	typ := t.Type().String()
	out := make([]byte, 0, len(head)+len(`{"txID":,"type":"","author":"","nonce":,"session":,"channel":}`)+
		3*maxIDJSON+len(typ)+2*(1+len(t.Author.Digest))+uintLen(t.Nonce)+len(mid)+len(id)+1)
	out = append(out, head...)
	out = append(out, `{"txID":`...)
	out = appendID(out, t.ID())
	out = append(out, `,"type":"`...)
	out = append(out, typ...)
	out = append(out, `","author":"`...)
	out = hex.AppendEncode(out, []byte{t.Author.Prefix}) // as crypto.SessionID.String
	out = hex.AppendEncode(out, t.Author.Digest[:])
	var session, channel ids.ID
	switch t.Payload.(type) {
	case *tx.CreateSession:
		session = tx.SessionIDFor(t.ChainID, t.Author, t.Nonce)
	case *tx.CreateChannel:
		channel = tx.ChannelIDFor(t.ChainID, t.Author, t.Nonce)
	}
	out = appendTxReplyEnd(out, t.Nonce, session, channel)
	out = append(out, mid...)
	out = append(out, id...)
	return append(out, '}')
}

// pageMessageOverhead bounds what one message of a page holds besides its
// ciphertext and the ciphertext's base64: the record loaded from the
// database, the reply's Message, and its JSON fields (about 330 bytes).
const pageMessageOverhead = 1024

// pageReservation is the response budget a getMessages or getInbox call
// takes before it runs: the most its page can hold while it is read and
// encoded (ciphertexts loaded, up to vm.MaxPageBytes and one message
// more, their base64, and the per-message overhead for limit messages).
// Other calls reserve nothing before they run.
func pageReservation(args any) int64 {
	var limit int
	switch a := args.(type) {
	case *MessagesArgs:
		limit = a.Limit
	case *InboxArgs:
		limit = a.Limit
	default:
		return 0
	}
	if limit <= 0 || limit > MaxPageSize {
		limit = DefaultPageSize // refused (out of range) or the default
	}
	ct := min(limit*config.MaxCiphertextSize, vm.MaxPageBytes+config.MaxCiphertextSize)
	return int64(ct + base64.StdEncoding.EncodedLen(ct) + limit*pageMessageOverhead + 256)
}

// maxPageReservation is pageReservation at the largest limit.
var maxPageReservation = pageReservation(&MessagesArgs{Limit: MaxPageSize})
