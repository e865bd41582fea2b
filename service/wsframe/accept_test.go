package wsframe

import (
	"errors"
	"testing"
)

func TestAcceptKey(t *testing.T) {
	// RFC 6455 section 1.3 (and section 4.2.2's example).
	got, err := AcceptKey("dGhlIHNhbXBsZSBub25jZQ==")
	if err != nil || got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("%q %v", got, err)
	}
	// A second vector, computed independently (Python hashlib): the key
	// of 16 zero bytes.
	got, err = AcceptKey("AAAAAAAAAAAAAAAAAAAAAA==")
	if err != nil || got != "ICX+Yqv66kxgM0FcWaLWlFLwTAI=" {
		t.Fatalf("%q %v", got, err)
	}
	for _, bad := range []string{
		"",
		"dGhlIHNhbXBsZSBub25jZQ",     // unpadded
		"dGhlIHNhbXBsZSBub25jZQ=",    // short padding
		"dGhlIHNhbXBsZSBub25j",       // 15 bytes
		"dGhlIHNhbXBsZSBub25jZQ==AA", // trailing data
		"AAAAAAAAAAAAAAAAAAAA",       // 15 bytes
		"AAAAAAAAAAAAAAAAAAAAAAA=",   // 17 bytes
		"AAAAAAAAAAAAAAAAAAAAAAAA",   // 18 bytes
		" dGhlIHNhbXBsZSBub25jZQ==",  // space
		"dGhlIHNhbXBsZSBub25jZQ== ",
		"dGhlIHNhbXBsZSBub2-_ZQ==",  // URL alphabet
		"dGhlIHNhbXBsZSBub25jZQ\n=", // a newline the decoder would skip
		"dGhlIHNhbXBsZSBub25jZQ%%",
	} {
		if _, err := AcceptKey(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("%q: %v, want ErrBadKey", bad, err)
		}
	}
}
