package crypto

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Fuzz targets for every decoder of untrusted bytes, seeded from the
// reference vectors (when present) and from identities made here. Each
// checks the contract: no panic, a sentinel error on failure, and
// round-trip or agreement properties on success. Seal/Open and identity
// files have their own fuzzers.

// fzIdentity is a fixed identity for fuzz targets that need a key.
func fzIdentity(f *testing.F) *Identity {
	f.Helper()
	var seed [SeedSize]byte
	copy(seed[:], "fuzz targets: fixed identity")
	id, err := IdentityFromSeed(seed)
	if err != nil {
		f.Fatal(err)
	}
	return id
}

// fzVectors returns the reference vectors, or nil when they are absent (the
// fuzzers then run on their other seeds).
func fzVectors(f *testing.F) *refvecSet {
	if _, ok := refvecDir(); !ok {
		return nil
	}
	return refvecLoad(f)
}

func FuzzParseKEMPublicKey(f *testing.F) {
	id := fzIdentity(f)
	f.Add(id.KEMPublicKey)
	f.Add(id.KEMPublicKey[:KEMPublicKeySize-1])
	f.Add(append(bytes.Clone(id.KEMPublicKey), 0))
	f.Add(bytes.Repeat([]byte{0xff}, KEMPublicKeySize))
	f.Add([]byte{})
	if v := fzVectors(f); v != nil {
		for _, r := range v.Identities.Identities {
			f.Add([]byte(r.KEMPublicKey))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKEMPublicKey(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidPublicKey) || k != nil {
				t.Fatalf("ParseKEMPublicKey: %v", err)
			}
			if _, _, err := Encapsulate(b); !errors.Is(err, ErrInvalidPublicKey) {
				t.Fatalf("Encapsulate accepted a key ParseKEMPublicKey rejects: %v", err)
			}
			return
		}
		if len(b) != KEMPublicKeySize || !bytes.Equal(k.Bytes(), b) {
			t.Fatal("accepted key does not round-trip")
		}
		ct, ss, err := k.Encapsulate()
		if err != nil || len(ct) != KEMCiphertextSize || len(ss) != KEMSharedSecretSize {
			t.Fatalf("Encapsulate: %v", err)
		}
	})
}

func FuzzParseKEMSecretKey(f *testing.F) {
	id := fzIdentity(f)
	f.Add(id.KEMSecretKey)
	f.Add(id.KEMSecretKey[:KEMSeedSize])
	f.Add(id.KEMSecretKey[:KEMSecretKeySize-1])
	f.Add(append(bytes.Clone(id.KEMSecretKey), 0))
	f.Add(make([]byte, KEMSecretKeySize))
	f.Add([]byte{})
	if v := fzVectors(f); v != nil {
		for _, r := range v.Identities.Identities[:4] {
			f.Add([]byte(r.KEMSecretKey))
		}
	}
	ct := make([]byte, KEMCiphertextSize)
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKEMSecretKey(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidSecretKey) || k != nil {
				t.Fatalf("ParseKEMSecretKey: %v", err)
			}
			return
		}
		if len(b) != KEMSecretKeySize && len(b) != KEMSeedSize {
			t.Fatalf("accepted a %d-byte key", len(b))
		}
		packed := k.Bytes()
		if len(b) == KEMSecretKeySize && !bytes.Equal(packed, b) {
			t.Fatal("expanded key does not round-trip")
		}
		// The packed form parses to the same key.
		k2, err := ParseKEMSecretKey(packed)
		if err != nil || !bytes.Equal(k2.Public().Bytes(), k.Public().Bytes()) {
			t.Fatalf("re-parse of packed key: %v", err)
		}
		// The key works: encapsulation to its public key decapsulates, and
		// an arbitrary ciphertext gives some secret (implicit rejection).
		c, ss, err := k.Public().Encapsulate()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == KEMSeedSize {
			got, err := k.Decapsulate(c)
			if err != nil || !bytes.Equal(got, ss) {
				t.Fatalf("seed-form key does not decapsulate its own ciphertext: %v", err)
			}
		}
		if _, err := k.Decapsulate(ct); err != nil {
			t.Fatalf("Decapsulate: %v", err)
		}
	})
}

func FuzzParseDSAPublicKey(f *testing.F) {
	id := fzIdentity(f)
	sig, err := id.Sign([]byte("fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(id.DSAPublicKey)
	f.Add(id.DSAPublicKey[:DSAPublicKeySize-1])
	f.Add(append(bytes.Clone(id.DSAPublicKey), 0))
	f.Add([]byte{})
	if v := fzVectors(f); v != nil {
		for _, r := range v.Identities.Identities[:4] {
			f.Add([]byte(r.DSAPublicKey))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseDSAPublicKey(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidPublicKey) || k != nil {
				t.Fatalf("ParseDSAPublicKey: %v", err)
			}
			if Verify(b, []byte("fuzz"), sig) {
				t.Fatal("Verify accepted an invalid public key")
			}
			return
		}
		if len(b) != DSAPublicKeySize || !bytes.Equal(k.Bytes(), b) {
			t.Fatal("accepted key does not round-trip")
		}
		if k.Verify([]byte("fuzz"), sig) != bytes.Equal(b, id.DSAPublicKey) {
			t.Fatal("the fixed signature verifies under a different key (or not under its own)")
		}
	})
}

func FuzzParseDSASecretKey(f *testing.F) {
	id := fzIdentity(f)
	f.Add(id.DSASecretKey)
	f.Add(id.DSASecretKey[:DSASeedSize])
	f.Add(id.DSASecretKey[:DSASecretKeySize-1])
	f.Add(append(bytes.Clone(id.DSASecretKey), 0))
	f.Add(make([]byte, DSASecretKeySize))
	f.Add(bytes.Repeat([]byte{0xff}, DSASecretKeySize))
	f.Add([]byte{})
	if v := fzVectors(f); v != nil {
		for _, r := range v.Identities.Identities[:4] {
			f.Add([]byte(r.DSASecretKey))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseDSASecretKey(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidSecretKey) || k != nil {
				t.Fatalf("ParseDSASecretKey: %v", err)
			}
			return
		}
		if len(b) != DSASecretKeySize && len(b) != DSASeedSize {
			t.Fatalf("accepted a %d-byte key", len(b))
		}
		if len(b) == DSASecretKeySize && !bytes.Equal(k.Bytes(), b) {
			t.Fatal("expanded key does not round-trip")
		}
		// Signing with any accepted key terminates without a panic; a
		// well-formed key's signature verifies under its public key.
		sig, err := k.Sign([]byte("fuzz"))
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if len(sig) != SignatureSize {
			t.Fatalf("signature of %d bytes", len(sig))
		}
		if len(b) == DSASeedSize && !k.Public().Verify([]byte("fuzz"), sig) {
			t.Fatal("seed-form key's signature does not verify")
		}
		_ = k.Public().Bytes()
	})
}

func FuzzDecryptFromSender(f *testing.F) {
	id := fzIdentity(f)
	for _, n := range []int{0, 1, 100} {
		env, err := EncryptToRecipient(id.KEMPublicKey, bytes.Repeat([]byte{'p'}, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env)
		f.Add(env[:len(env)-1])
		f.Add(env[:KEMCiphertextSize+NonceSize])
	}
	f.Add([]byte{})
	f.Add(make([]byte, KEMCiphertextSize))
	// The reference envelopes were made for other keys; they exercise the
	// implicit-rejection path here.
	if v := fzVectors(f); v != nil {
		for _, e := range v.Envelopes.Vectors {
			if len(e.Envelope) < 8192 {
				f.Add([]byte(e.Envelope))
			}
		}
		for _, e := range v.Envelopes.Negative {
			f.Add([]byte(e.Envelope))
		}
	}
	sk, err := ParseKEMSecretKey(id.KEMSecretKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, env []byte) {
		pt, err := DecryptFromSender(id.KEMSecretKey, env)
		pt2, err2 := sk.decryptFromSender(env)
		if (err == nil) != (err2 == nil) || !bytes.Equal(pt, pt2) {
			t.Fatalf("DecryptFromSender and the parsed key disagree: %v / %v", err, err2)
		}
		if err != nil {
			want := ErrDecryptionFailed
			if len(env) < KEMCiphertextSize+NonceSize {
				want = ErrInvalidCiphertext
			}
			if !errors.Is(err, want) || pt != nil {
				t.Fatalf("%d-byte envelope: %v, want %v", len(env), err, want)
			}
			return
		}
		if len(pt) != len(env)-RecipientOverhead {
			t.Fatalf("plaintext of %d bytes from a %d-byte envelope", len(pt), len(env))
		}
	})
}

func FuzzVerifyMessage(f *testing.F) {
	id := fzIdentity(f)
	pub := id.PublicIdentity()
	for _, m := range []string{"", "m", "a longer signed message"} {
		signed, err := id.SignMessage([]byte(m))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(signed)
		f.Add(signed[:SignatureSize-1])
		f.Add(append(bytes.Clone(signed), 0))
	}
	f.Add([]byte{})
	// Reference signed messages (by other keys, so they must fail here).
	if v := fzVectors(f); v != nil {
		for _, s := range v.SignedMessages.Vectors {
			f.Add([]byte(s.SignedMessage))
		}
		for _, s := range v.SignedMessages.Negative {
			f.Add([]byte(s.SignedMessage))
		}
	}
	f.Fuzz(func(t *testing.T, signed []byte) {
		msg, err := pub.VerifyMessage(signed)
		if err != nil {
			if !errors.Is(err, ErrInvalidSignature) || msg != nil {
				t.Fatalf("VerifyMessage: %v", err)
			}
			return
		}
		if len(signed) < SignatureSize || !bytes.Equal(msg, signed[SignatureSize:]) {
			t.Fatal("VerifyMessage returned something other than the signed bytes")
		}
		if !Verify(id.DSAPublicKey, msg, signed[:SignatureSize]) {
			t.Fatal("VerifyMessage accepted what Verify rejects")
		}
	})
}

func FuzzParseSessionID(f *testing.F) {
	id := fzIdentity(f)
	f.Add(id.SessionID)
	f.Add(PrefixLegacy + id.SessionID[2:])
	f.Add(strings.ToUpper(id.SessionID))
	f.Add(id.SessionID[:SessionIDLength-1])
	f.Add(id.SessionID + "0")
	f.Add("")
	f.Add("07")
	f.Add("06" + id.SessionID[2:])
	if v := fzVectors(f); v != nil {
		for _, r := range v.Identities.Identities {
			f.Add(r.SessionID)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSessionID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidSessionID) {
				t.Fatalf("ParseSessionID(%q): %v", s, err)
			}
			if len(s) > 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q echoes the input", err)
			}
			return
		}
		// parse -> String is the identity on accepted inputs, and parses
		// to the same value again.
		if p.String() != s {
			t.Fatalf("ParseSessionID(%q).String() = %q", s, p.String())
		}
		if p.IsPostQuantum() != strings.HasPrefix(s, PrefixPostQuantum) {
			t.Fatalf("IsPostQuantum wrong for %q", s)
		}
		q, err := ParseSessionID(p.String())
		if err != nil || q != p {
			t.Fatalf("re-parse: %v, %v", q, err)
		}
	})
}
