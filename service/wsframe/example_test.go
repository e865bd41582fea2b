package wsframe_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/luxfi/session/service/wsframe"
)

// A connection loop's reading side, in outline: messages are run in
// order, pings answered in stream order, and any refusal becomes the
// node's close frame.
func Example() {
	// What a client sent: a masked ping, then a text message in two
	// fragments, then a frame with a reserved bit set.
	in := []byte{
		0x89, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2, // ping "hi"
		0x01, 0x83, 0, 0, 0, 0, '[', '1', ',', // text "[1," (key 0), not final
		0x80, 0x82, 0, 0, 0, 0, '2', ']', // continuation "2]", final
		0xC1, 0x80, 0, 0, 0, 0, // RSV1: refused
	}
	r := wsframe.NewReader(bytes.NewReader(in), nil)
	var out []byte
	for {
		m, err := r.Next()
		var ce wsframe.CloseError
		switch {
		case errors.As(err, &ce):
			out, _ = wsframe.AppendClose(out, ce.Code, ce.Reason)
			fmt.Printf("close %d (%s)\n", ce.Code, ce.Reason)
			fmt.Printf("wrote %d bytes\n", len(out))
			return
		case err == io.EOF:
			return
		case err != nil:
			return
		}
		switch m.Op {
		case wsframe.OpPing:
			out, _ = wsframe.AppendPong(out, m.Payload)
			fmt.Printf("ping %q\n", m.Payload)
		case wsframe.OpText:
			fmt.Printf("message %s\n", m.Payload)
			out = wsframe.AppendText(out, []byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
		}
	}
	// Output:
	// ping "hi"
	// message [1,2]
	// close 1002 (reserved bit set)
	// wrote 62 bytes
}
