package crypto

import (
	"bytes"
	"errors"
	"testing"
)

func TestEncryptDecryptAppend(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	pt := []byte("append-style AEAD")
	prefix := []byte("prefix:")

	ct, err := EncryptAppend(bytes.Clone(prefix), key, pt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(ct, prefix) || len(ct) != len(prefix)+NonceSize+len(pt)+TagSize {
		t.Fatalf("EncryptAppend: %d bytes, prefix kept %v", len(ct), bytes.HasPrefix(ct, prefix))
	}
	// The appended part is an ordinary Encrypt output.
	got, err := Decrypt(key, ct[len(prefix):])
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Decrypt of the appended ciphertext: %q, %v", got, err)
	}
	out, err := DecryptAppend(bytes.Clone(prefix), key, ct[len(prefix):])
	if err != nil || !bytes.Equal(out, append(bytes.Clone(prefix), pt...)) {
		t.Fatalf("DecryptAppend: %q, %v", out, err)
	}

	// With enough capacity neither allocates (the key schedule aside,
	// which x/crypto allocates per call).
	buf := make([]byte, 0, 1024)
	plain := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(50, func() {
		c, _ := EncryptAppend(buf[:0], key, pt)
		if &c[0] != &buf[:1][0] {
			t.Fatal("EncryptAppend reallocated a buffer with room")
		}
		p, _ := DecryptAppend(plain[:0], key, c)
		if &p[0] != &plain[:1][0] {
			t.Fatal("DecryptAppend reallocated a buffer with room")
		}
	}); n > 2 {
		t.Fatalf("%v allocations per round trip into buffers with room", n)
	}

	// Errors are those of Encrypt and Decrypt.
	if _, err := EncryptAppend(nil, key[:31], pt); !errors.Is(err, ErrInvalidSecretKey) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := DecryptAppend(nil, key, ct[len(prefix):len(prefix)+NonceSize-1]); !errors.Is(err, ErrInvalidCiphertext) {
		t.Fatalf("short ciphertext: %v", err)
	}
	bad := bytes.Clone(ct[len(prefix):])
	bad[len(bad)-1] ^= 1
	if out, err := DecryptAppend(bytes.Clone(prefix), key, bad); !errors.Is(err, ErrDecryptionFailed) || out != nil {
		t.Fatalf("tampered: %q, %v", out, err)
	}
}
