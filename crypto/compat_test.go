package crypto_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/luxfi/session/crypto"
)

// The exported API of the reference implementation's crypto package
// (github.com/luxfi/session at f794d5b; REFERENCE-API.md), asserted with
// the exact types: if a name disappears or its signature changes, this
// file stops compiling. Parameter names are not part of a Go type.
var (
	_ func(secretKey, ciphertext []byte) (sharedSecret []byte, err error)          = crypto.Decapsulate
	_ func(key, ciphertext []byte) ([]byte, error)                                 = crypto.Decrypt
	_ func(secretKey, ciphertext []byte) ([]byte, error)                           = crypto.DecryptFromSender
	_ func(kemPublicKey, dsaPublicKey []byte) (string, error)                      = crypto.DeriveSessionID
	_ func(recipientPublicKey []byte) (ciphertext, sharedSecret []byte, err error) = crypto.Encapsulate
	_ func(key, plaintext []byte) ([]byte, error)                                  = crypto.Encrypt
	_ func(recipientPublicKey, plaintext []byte) ([]byte, error)                   = crypto.EncryptToRecipient
	_ func(secretKey, message []byte) (signature []byte, err error)                = crypto.Sign
	_ func(publicKey, message, signature []byte) bool                              = crypto.Verify

	_ func() (*crypto.Identity, error)                                 = crypto.GenerateIdentity
	_ func(*crypto.Identity, []byte) ([]byte, error)                   = (*crypto.Identity).DecryptFrom
	_ func(*crypto.Identity, *crypto.Identity, []byte) ([]byte, error) = (*crypto.Identity).EncryptTo
	_ func(*crypto.Identity) *crypto.Identity                          = (*crypto.Identity).PublicIdentity
	_ func(*crypto.Identity, []byte) ([]byte, error)                   = (*crypto.Identity).SignMessage
	_ func(*crypto.Identity, []byte) ([]byte, bool)                    = (*crypto.Identity).VerifyMessage

	_ error = crypto.ErrInvalidPublicKey
	_ error = crypto.ErrInvalidSecretKey
	_ error = crypto.ErrInvalidSignature
	_ error = crypto.ErrInvalidCiphertext
	_ error = crypto.ErrDecryptionFailed
)

// The reference's constants are untyped; these lines compile only if ours
// are too (an untyped constant converts to both string-or-int targets).
const (
	_ string = crypto.PQPrefix
	_ string = crypto.LegacyPrefix
	_ int    = crypto.MLKEMPublicKeySize + crypto.MLKEMSecretKeySize + crypto.MLKEMCiphertextSize + crypto.MLKEMSharedKeySize
	_ int    = crypto.MLDSAPublicKeySize + crypto.MLDSASecretKeySize + crypto.MLDSASignatureSize
	_ uint16 = crypto.MLKEMPublicKeySize // untyped: also converts to other integer types
)

func TestReferenceConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"PQPrefix", crypto.PQPrefix, "07"},
		{"LegacyPrefix", crypto.LegacyPrefix, "05"},
		{"MLKEMPublicKeySize", crypto.MLKEMPublicKeySize, 1184},
		{"MLKEMSecretKeySize", crypto.MLKEMSecretKeySize, 2400},
		{"MLKEMCiphertextSize", crypto.MLKEMCiphertextSize, 1088},
		{"MLKEMSharedKeySize", crypto.MLKEMSharedKeySize, 32},
		{"MLDSAPublicKeySize", crypto.MLDSAPublicKeySize, 1952},
		{"MLDSASecretKeySize", crypto.MLDSASecretKeySize, 4032},
		{"MLDSASignatureSize", crypto.MLDSASignatureSize, 3309},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	for err, msg := range map[error]string{
		crypto.ErrInvalidPublicKey:  "invalid public key",
		crypto.ErrInvalidSecretKey:  "invalid secret key",
		crypto.ErrInvalidSignature:  "invalid signature",
		crypto.ErrInvalidCiphertext: "invalid ciphertext",
		crypto.ErrDecryptionFailed:  "decryption failed",
	} {
		if err.Error() != msg {
			t.Errorf("error %q, the reference says %q", err, msg)
		}
	}
}

// TestReferenceIdentityStruct checks the exported fields of Identity:
// names, types, order and JSON tags as in the reference.
func TestReferenceIdentityStruct(t *testing.T) {
	want := []struct{ name, typ, tag string }{
		{"SessionID", "string", `json:"sessionId"`},
		{"KEMPublicKey", "[]uint8", `json:"kemPublicKey"`},
		{"KEMSecretKey", "[]uint8", `json:"kemSecretKey,omitempty"`},
		{"DSAPublicKey", "[]uint8", `json:"dsaPublicKey"`},
		{"DSASecretKey", "[]uint8", `json:"dsaSecretKey,omitempty"`},
	}
	typ := reflect.TypeFor[crypto.Identity]()
	var got []struct{ name, typ, tag string }
	for f := range typ.Fields() {
		if f.IsExported() {
			got = append(got, struct{ name, typ, tag string }{f.Name, f.Type.String(), string(f.Tag)})
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Identity exported fields:\n got %v\nwant %v", got, want)
	}
	// A composite literal with the reference's field names compiles.
	_ = crypto.Identity{SessionID: "", KEMPublicKey: nil, KEMSecretKey: nil, DSAPublicKey: nil, DSASecretKey: nil}
}

// TestReferenceVerifyMessage checks the reference's bool form against the
// error form, on valid, tampered, short and empty signed messages.
func TestReferenceVerifyMessage(t *testing.T) {
	alice, err := crypto.IdentityFromSeed([32]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := crypto.IdentityFromSeed([32]byte{2})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := alice.SignMessage([]byte("meet at noon"))
	if err != nil {
		t.Fatal(err)
	}
	empty, err := alice.SignMessage(nil)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(signed)
	flipped[len(flipped)-1] ^= 1
	for _, c := range []struct {
		name    string
		id      *crypto.Identity
		signed  []byte
		want    []byte // nil: refused
		wantErr error
	}{
		{"valid", alice.PublicIdentity(), signed, []byte("meet at noon"), nil},
		{"valid, secret identity", alice, signed, []byte("meet at noon"), nil},
		{"empty message", alice.PublicIdentity(), empty, []byte{}, nil},
		{"tampered", alice.PublicIdentity(), flipped, nil, crypto.ErrInvalidSignature},
		{"wrong signer", bob.PublicIdentity(), signed, nil, crypto.ErrInvalidSignature},
		{"shorter than a signature", alice, signed[:crypto.MLDSASignatureSize-1], nil, crypto.ErrInvalidSignature},
		{"no key", &crypto.Identity{}, signed, nil, crypto.ErrInvalidPublicKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg, ok := c.id.VerifyMessage(c.signed)
			msg2, err := c.id.VerifySignedMessage(c.signed)
			if c.want == nil {
				if ok || msg != nil {
					t.Errorf("VerifyMessage = %q, %v; want nil, false", msg, ok)
				}
				if !errors.Is(err, c.wantErr) || msg2 != nil {
					t.Errorf("VerifySignedMessage = %q, %v; want nil, %v", msg2, err, c.wantErr)
				}
				return
			}
			// A valid empty message is an empty, non-nil slice and true,
			// as in the reference.
			if !ok || msg == nil || !bytes.Equal(msg, c.want) {
				t.Errorf("VerifyMessage = %q (nil %v), %v; want %q, true", msg, msg == nil, ok, c.want)
			}
			if err != nil || !bytes.Equal(msg2, c.want) {
				t.Errorf("VerifySignedMessage = %q, %v", msg2, err)
			}
		})
	}
}

// TestReferenceVectorsPinned checks that the reference vectors shipped in
// testdata are the files published with the reference implementation
// (SHA-256 of each), so that an edit to them cannot go unnoticed.
func TestReferenceVectorsPinned(t *testing.T) {
	pinned := map[string]string{
		"identities.json":      "9daa9f722aa1c2e263d57cbc9077d2af5c2c3629e16caa0d8567c10eae904d92",
		"signatures.json":      "48de8c9f269711345bb7fcf3783976d4e1ad744d862ef60bfb818b4bafc82606",
		"envelopes.json":       "aabad987c3a971d1ae91af29b110fd0d209133cb5ed19d116a5fc82a1f06d682",
		"signed_messages.json": "061d2a64a7307704e491863555c3c91735d063cb547fb9c2d35f892ff852a886",
		"README.md":            "7070aa96ed88d83a3e5fa22e1cb9b18df263f7c923e2c8ee98b4170edcd7bab3",
	}
	for name, want := range pinned {
		b, err := os.ReadFile(filepath.Join("testdata", "reference", name))
		if err != nil {
			t.Fatalf("the reference vectors must ship with the repository: %v", err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("testdata/reference/%s: SHA-256 %s, pinned %s", name, got, want)
		}
	}
}
