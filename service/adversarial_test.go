package service

import (
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/ids"
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
