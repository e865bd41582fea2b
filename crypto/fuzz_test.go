package crypto

import (
	"bytes"
	"crypto/sha3"
	"errors"
	"strings"
	"testing"

	"github.com/luxfi/session/internal/fuzzedit"
)

// Fuzz targets for every decoder of untrusted bytes. Each checks the
// contract: no panic, a sentinel error on failure, and round-trip,
// agreement or oracle properties on success.
//
// The inputs are kilobytes (keys, signatures, envelopes), so the targets do
// not fuzz those bytes directly: Go's fuzzer minimizes every new
// interesting input, and minimizing kilobytes through an ML-DSA
// verification took minutes per input (FuzzVerifyMessage ran 71 inputs in
// 40 seconds). Instead each target builds a few valid encodings once and
// fuzzes a small edit script applied to one of them (internal/fuzzedit):
// which encoding, byte edits, a length change. The fuzzer works on a few
// dozen bytes; the parser sees full-size, nearly valid inputs.

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

// fzVectors returns the reference vectors (shipped in testdata).
func fzVectors(f *testing.F) *refvecSet {
	return refvecLoad(f)
}

// fzSeeds adds, for every base, the unedited base and a few edits that
// reach the checks: a truncation, an extension, a flipped last byte.
func fzSeeds(f *testing.F, bases [][]byte, extra ...any) {
	for i := range bases {
		w := uint8(i)
		f.Add(append([]any{w, []byte(nil), int16(0)}, extra...)...)
		f.Add(append([]any{w, []byte(nil), int16(-1)}, extra...)...)
		f.Add(append([]any{w, []byte(nil), int16(1)}, extra...)...)
		f.Add(append([]any{w, []byte{0, 0xff, 0xff, 1}, int16(0)}, extra...)...)
	}
}

// fzOneOf reports whether b equals one of list.
func fzOneOf(b []byte, list [][]byte) bool {
	for _, x := range list {
		if bytes.Equal(b, x) {
			return true
		}
	}
	return false
}

func FuzzParseKEMPublicKey(f *testing.F) {
	id := fzIdentity(f)
	bases := [][]byte{id.KEMPublicKey}
	if v := fzVectors(f); v != nil {
		for _, r := range v.Identities.Identities[:2] {
			bases = append(bases, []byte(r.KEMPublicKey))
		}
	}
	fzSeeds(f, bases)
	f.Add(uint8(0), []byte{1, 0, 0, 0xff, 1, 0, 1, 0x0f}, int16(0)) // first coefficient 4095
	f.Fuzz(func(t *testing.T, which uint8, edits []byte, resize int16) {
		b := fuzzedit.Apply(fuzzedit.Pick(bases, which), edits, resize)
		k, err := ParseKEMPublicKey(b)
		// Oracle: the length, and every coefficient of t̂ below q
		// (decoded bit by bit, independently of the code under test).
		want := len(b) == KEMPublicKeySize && testCoefficientsBelowQ(b[:KEMPublicKeySize-32])
		if (err == nil) != want {
			t.Fatalf("ParseKEMPublicKey: %v, oracle says valid = %v", err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidPublicKey) || k != nil {
				t.Fatalf("ParseKEMPublicKey: %v", err)
			}
			if _, _, err := Encapsulate(b); !errors.Is(err, ErrInvalidPublicKey) {
				t.Fatalf("Encapsulate accepted a key ParseKEMPublicKey rejects: %v", err)
			}
			return
		}
		if !bytes.Equal(k.Bytes(), b) || !kemPublicKeyCanonical(b) {
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
	bases := [][]byte{id.KEMSecretKey, id.KEMSecretKey[:KEMSeedSize]}
	if v := fzVectors(f); v != nil {
		for _, r := range v.Identities.Identities[:2] {
			bases = append(bases, []byte(r.KEMSecretKey))
		}
	}
	fzSeeds(f, bases, false)
	f.Add(uint8(0), []byte{1, 0, 0, 0xff, 1, 0, 1, 0x0f}, int16(0), false)    // s[0] = 4095
	f.Add(uint8(0), []byte{1, 4, 128, 0xff, 1, 4, 129, 0x0f}, int16(0), true) // ek's t[0] = 4095, hash fixed up
	ct := make([]byte, KEMCiphertextSize)
	f.Fuzz(func(t *testing.T, which uint8, edits []byte, resize int16, fixHash bool) {
		b := fuzzedit.Apply(fuzzedit.Pick(bases, which), edits, resize)
		if fixHash && len(b) == KEMSecretKeySize {
			h := sha3.Sum256(b[kemDKPKEEnd:kemEKEnd])
			copy(b[kemEKEnd:kemHashEnd], h[:])
		}
		k, err := ParseKEMSecretKey(b)
		// Oracle: FIPS 203's input checks, written out independently.
		want := len(b) == KEMSeedSize
		if len(b) == KEMSecretKeySize {
			h := sha3.Sum256(b[1152:2336])
			want = bytes.Equal(h[:], b[2336:2368]) && testCoefficientsBelowQ(b[:1152]) && testCoefficientsBelowQ(b[1152:2304])
		}
		if (err == nil) != want {
			t.Fatalf("ParseKEMSecretKey: %v, oracle says valid = %v", err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidSecretKey) || k != nil {
				t.Fatalf("ParseKEMSecretKey: %v", err)
			}
			return
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
		// A seed-form key decapsulates its own ciphertexts; any key gives
		// some secret for an arbitrary ciphertext (implicit rejection).
		if len(b) == KEMSeedSize {
			c, ss, err := k.Public().Encapsulate()
			if err != nil {
				t.Fatal(err)
			}
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
	bases := [][]byte{id.DSAPublicKey}
	if v := fzVectors(f); v != nil {
		for _, r := range v.Identities.Identities[:2] {
			bases = append(bases, []byte(r.DSAPublicKey))
		}
	}
	fzSeeds(f, bases)
	f.Fuzz(func(t *testing.T, which uint8, edits []byte, resize int16) {
		b := fuzzedit.Apply(fuzzedit.Pick(bases, which), edits, resize)
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
	bases := [][]byte{id.DSASecretKey, id.DSASecretKey[:DSASeedSize]}
	if v := fzVectors(f); v != nil {
		bases = append(bases, []byte(v.Identities.Identities[0].DSASecretKey))
	}
	fzSeeds(f, bases)
	f.Add(uint8(0), []byte{1, 0, 200, 0xff, 1, 0, 201, 0xff}, int16(0)) // s1 out of range
	f.Fuzz(func(t *testing.T, which uint8, edits []byte, resize int16) {
		b := fuzzedit.Apply(fuzzedit.Pick(bases, which), edits, resize)
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
	})
}

func FuzzDecryptFromSender(f *testing.F) {
	id := fzIdentity(f)
	var bases [][]byte
	for _, n := range []int{0, 1, 100} {
		env, err := EncryptToRecipient(id.KEMPublicKey, bytes.Repeat([]byte{'p'}, n))
		if err != nil {
			f.Fatal(err)
		}
		bases = append(bases, env)
	}
	// Reference envelopes were made for other keys: they exercise the
	// implicit-rejection path here.
	if v := fzVectors(f); v != nil {
		for _, e := range v.Envelopes.Vectors[:1] {
			bases = append(bases, []byte(e.Envelope))
		}
	}
	fzSeeds(f, bases)
	sk, err := ParseKEMSecretKey(id.KEMSecretKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, edits []byte, resize int16) {
		env := fuzzedit.Apply(fuzzedit.Pick(bases, which), edits, resize)
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
		// Only an unchanged envelope of ours opens: the AEAD binds all of it.
		if !fzOneOf(env, bases[:3]) {
			t.Fatal("an edited envelope decrypted")
		}
	})
}

func FuzzVerifyMessage(f *testing.F) {
	id := fzIdentity(f)
	pub := id.PublicIdentity()
	var bases [][]byte
	for _, m := range []string{"", "m", "a longer signed message"} {
		signed, err := id.SignMessage([]byte(m))
		if err != nil {
			f.Fatal(err)
		}
		bases = append(bases, signed)
	}
	ours := len(bases)
	// Reference signed messages, by other keys: they must fail here.
	if v := fzVectors(f); v != nil {
		bases = append(bases, []byte(v.SignedMessages.Vectors[0].SignedMessage))
		for _, s := range v.SignedMessages.Negative[:min(2, len(v.SignedMessages.Negative))] {
			bases = append(bases, []byte(s.SignedMessage))
		}
	}
	fzSeeds(f, bases)
	f.Fuzz(func(t *testing.T, which uint8, edits []byte, resize int16) {
		signed := fuzzedit.Apply(fuzzedit.Pick(bases, which), edits, resize)
		msg, err := pub.VerifySignedMessage(signed)
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
		// The fuzzer cannot forge: only our unchanged signed messages verify.
		if !fzOneOf(signed, bases[:ours]) {
			t.Fatal("an edited or foreign signed message verified")
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
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4*SessionIDLength {
			// Refused by length alone (TestParseSessionID covers that);
			// a long input here would only slow the fuzzer's minimizer.
			if _, err := ParseSessionID(s); !errors.Is(err, ErrInvalidSessionID) {
				t.Fatalf("a %d-character Session ID: %v", len(s), err)
			}
			return
		}
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
