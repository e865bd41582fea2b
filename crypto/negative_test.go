package crypto

import (
	"bytes"
	"crypto/sha3"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Negative tables: every truncation and extension of every encoding, bit
// flips, and checks that failures give the right sentinel, never a panic,
// and never echo key material.

type negFixtureT struct {
	id, other *Identity
	signed    []byte // id.SignMessage(negMessage)
	sig       []byte // id.Sign(negMessage)
	envelope  []byte // EncryptToRecipient(id.KEMPublicKey, negPlaintext)
	sessionID string
}

var (
	negMessage   = []byte("negative-table message")
	negPlaintext = bytes.Repeat([]byte{0x5a}, 100)

	negOnce    sync.Once
	negFixture negFixtureT
)

func negSetup(t *testing.T) *negFixtureT {
	t.Helper()
	negOnce.Do(func() {
		var seed [SeedSize]byte
		copy(seed[:], "negative tables: identity seed")
		id, err := IdentityFromSeed(seed)
		if err != nil {
			panic(err)
		}
		seed[0] ^= 1
		other, err := IdentityFromSeed(seed)
		if err != nil {
			panic(err)
		}
		signed, err := id.SignMessage(negMessage)
		if err != nil {
			panic(err)
		}
		sig, err := id.Sign(negMessage)
		if err != nil {
			panic(err)
		}
		env, err := EncryptToRecipient(id.KEMPublicKey, negPlaintext)
		if err != nil {
			panic(err)
		}
		negFixture = negFixtureT{id: id, other: other, signed: signed, sig: sig, envelope: env, sessionID: id.SessionID}
	})
	return &negFixture
}

// negCall runs f and turns a panic into a test failure naming the input.
func negCall(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s panicked: %v", what, r)
		}
	}()
	f()
}

// negResize returns b cut or extended (with zero bytes) to n bytes.
func negResize(b []byte, n int) []byte {
	if n <= len(b) {
		return bytes.Clone(b[:n])
	}
	return append(bytes.Clone(b), make([]byte, n-len(b))...)
}

// negLengths returns every length from 0 to n+2, plus a few far longer.
func negLengths(n int) []int {
	var ls []int
	for i := 0; i <= n+2; i++ {
		ls = append(ls, i)
	}
	return append(ls, 2*n, 2*n+1, n+4096)
}

// negSecretStrings are encodings of secret material that must never appear
// in an error message.
func negSecretStrings(keys ...[]byte) []string {
	var out []string
	for _, k := range keys {
		if len(k) < 16 {
			continue
		}
		for _, off := range []int{0, len(k) / 2, len(k) - 16} {
			chunk := k[off : off+12]
			out = append(out, hex.EncodeToString(chunk), strings.ToUpper(hex.EncodeToString(chunk)),
				base64.StdEncoding.EncodeToString(chunk), base64.RawURLEncoding.EncodeToString(chunk))
		}
		out = append(out, fmt.Sprint(k[:8])[1:12]) // "[12 34 56 ..." form of %v
	}
	return out
}

// negCheckErr checks that err matches want and does not leak key material.
func negCheckErr(t *testing.T, what string, err, want error, secrets []string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
		return
	}
	msg := err.Error()
	if len(msg) > 160 {
		t.Errorf("%s: error message is %d characters long: %.80q...", what, len(msg), msg)
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("%s: error message %q contains key material", what, msg)
		}
	}
}

func TestBadLengthsKEMPublicKey(t *testing.T) {
	f := negSetup(t)
	secrets := negSecretStrings(f.id.KEMPublicKey, f.id.KEMSecretKey)
	for _, n := range negLengths(KEMPublicKeySize) {
		b := negResize(f.id.KEMPublicKey, n)
		negCall(t, fmt.Sprintf("ML-KEM public key of %d bytes", n), func() {
			k, err := ParseKEMPublicKey(b)
			ct, ss, err2 := Encapsulate(b)
			env, err3 := EncryptToRecipient(b, negPlaintext)
			pub, err4 := NewPublicIdentity(b, f.id.DSAPublicKey)
			sid, err5 := DeriveSessionID(b, f.id.DSAPublicKey)
			_, err6 := f.id.EncryptTo(&Identity{KEMPublicKey: b}, negPlaintext)
			if n == KEMPublicKeySize {
				if err != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil || err6 != nil {
					t.Fatalf("valid key rejected: %v %v %v %v %v %v", err, err2, err3, err4, err5, err6)
				}
				if !bytes.Equal(k.Bytes(), b) || len(ct) != KEMCiphertextSize || len(ss) != KEMSharedSecretSize ||
					len(env) != len(negPlaintext)+RecipientOverhead || pub.SessionID != f.sessionID || sid != f.sessionID {
					t.Fatal("valid key gave wrong results")
				}
				return
			}
			what := fmt.Sprintf("%d-byte KEM public key", n)
			negCheckErr(t, what+": ParseKEMPublicKey", err, ErrInvalidPublicKey, secrets)
			negCheckErr(t, what+": Encapsulate", err2, ErrInvalidPublicKey, secrets)
			negCheckErr(t, what+": EncryptToRecipient", err3, ErrInvalidPublicKey, secrets)
			negCheckErr(t, what+": NewPublicIdentity", err4, ErrInvalidPublicKey, secrets)
			negCheckErr(t, what+": DeriveSessionID", err5, ErrInvalidPublicKey, secrets)
			negCheckErr(t, what+": Identity.EncryptTo", err6, ErrInvalidPublicKey, secrets)
			if k != nil || ct != nil || ss != nil || env != nil || pub != nil || sid != "" {
				t.Fatalf("%s: non-zero result with an error", what)
			}
		})
	}
}

func TestKEMPublicKeyModulusCheck(t *testing.T) {
	f := negSetup(t)
	// Every coefficient is 12 bits; values from q = 3329 to 4095 are not
	// canonical and FIPS 203 requires rejecting the key. Set coefficient 0,
	// then the last coefficient, to 4095 and to q.
	for _, c := range []struct {
		name string
		mod  func(b []byte)
	}{
		{"first=4095", func(b []byte) { b[0] = 0xff; b[1] |= 0x0f }},
		{"first=q", func(b []byte) { b[0] = 3329 & 0xff; b[1] = b[1]&0xf0 | 3329>>8 }},
		{"last=4095", func(b []byte) { b[1151] = 0xff; b[1150] |= 0xf0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(f.id.KEMPublicKey)
			c.mod(b)
			if _, err := ParseKEMPublicKey(b); !errors.Is(err, ErrInvalidPublicKey) {
				t.Errorf("ParseKEMPublicKey: %v, want ErrInvalidPublicKey", err)
			}
			if _, _, err := Encapsulate(b); !errors.Is(err, ErrInvalidPublicKey) {
				t.Errorf("Encapsulate: %v, want ErrInvalidPublicKey", err)
			}
			// The same key embedded in an expanded secret key, with its hash
			// fixed up so that only the modulus check can catch it.
			sk := bytes.Clone(f.id.KEMSecretKey)
			copy(sk[1152:2336], b)
			h := sha3.Sum256(b)
			copy(sk[2336:2368], h[:])
			if _, err := ParseKEMSecretKey(sk); !errors.Is(err, ErrInvalidSecretKey) {
				t.Errorf("ParseKEMSecretKey with a non-canonical embedded key: %v, want ErrInvalidSecretKey", err)
			}
		})
	}
}

func TestBadLengthsKEMSecretKey(t *testing.T) {
	f := negSetup(t)
	secrets := negSecretStrings(f.id.KEMSecretKey)
	ct := f.envelope[:KEMCiphertextSize]
	for _, n := range negLengths(KEMSecretKeySize) {
		b := negResize(f.id.KEMSecretKey, n)
		negCall(t, fmt.Sprintf("ML-KEM secret key of %d bytes", n), func() {
			_, err := ParseKEMSecretKey(b)
			_, err2 := Decapsulate(b, ct)
			_, err3 := DecryptFromSender(b, f.envelope)
			_, err4 := NewIdentity(b, f.id.DSASecretKey)
			switch n {
			case KEMSecretKeySize, KEMSeedSize:
				// Any 64 bytes are a seed; the 2400-byte key is the valid one.
				if err != nil || err2 != nil || err4 != nil {
					t.Fatalf("%d-byte key rejected: %v %v %v", n, err, err2, err4)
				}
				if n == KEMSecretKeySize && err3 != nil {
					t.Fatalf("DecryptFromSender: %v", err3)
				}
				if n == KEMSeedSize {
					negCheckErr(t, "DecryptFromSender with an unrelated seed", err3, ErrDecryptionFailed, secrets)
				}
				return
			}
			what := fmt.Sprintf("%d-byte KEM secret key", n)
			negCheckErr(t, what+": ParseKEMSecretKey", err, ErrInvalidSecretKey, secrets)
			negCheckErr(t, what+": Decapsulate", err2, ErrInvalidSecretKey, secrets)
			negCheckErr(t, what+": DecryptFromSender", err3, ErrInvalidSecretKey, secrets)
			negCheckErr(t, what+": NewIdentity", err4, ErrInvalidSecretKey, secrets)
		})
	}
}

func TestKEMSecretKeyBitFlips(t *testing.T) {
	f := negSetup(t)
	secrets := negSecretStrings(f.id.KEMSecretKey)
	ct := f.envelope[:KEMCiphertextSize]
	want, _ := Decapsulate(f.id.KEMSecretKey, ct)
	badCT := bytes.Clone(ct)
	badCT[0] ^= 1
	wantRejection, _ := Decapsulate(f.id.KEMSecretKey, badCT)
	// One bit in every 7th byte, and every byte of the hash and z fields.
	for i := 0; i < KEMSecretKeySize; i++ {
		if i%7 != 0 && i < 2336 {
			continue
		}
		b := bytes.Clone(f.id.KEMSecretKey)
		b[i] ^= 1 << (i % 8)
		negCall(t, fmt.Sprintf("KEM secret key with byte %d flipped", i), func() {
			k, err := ParseKEMSecretKey(b)
			switch {
			case i >= 1152 && i < 2368:
				// The embedded encapsulation key and its hash are bound.
				negCheckErr(t, fmt.Sprintf("flip in byte %d", i), err, ErrInvalidSecretKey, secrets)
			case i < 1152 && !testCoefficientsBelowQ(b[:1152]):
				// The flip made a coefficient of s ≥ q: not canonical.
				negCheckErr(t, fmt.Sprintf("flip in byte %d (non-canonical s)", i), err, ErrInvalidSecretKey, secrets)
			case err != nil:
				t.Fatalf("flip in byte %d (s or z): %v", i, err)
			case i >= 2368:
				// z changed: a valid ciphertext still decapsulates, but the
				// implicit-rejection key of a tampered one changes.
				got, _ := k.Decapsulate(ct)
				rej, _ := k.Decapsulate(badCT)
				if !bytes.Equal(got, want) || bytes.Equal(rej, wantRejection) {
					t.Fatalf("flip in z byte %d: wrong decapsulation behaviour", i)
				}
			default:
				// s changed: the key loads but no longer decapsulates
				// to the same secret.
				got, err := k.Decapsulate(ct)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Equal(got, want) {
					t.Fatalf("flip in byte %d did not change the decapsulated secret", i)
				}
			}
		})
	}
}

// testCoefficientsBelowQ decodes ByteEncode₁₂ naively (the reference for
// kemCoefficientsCanonical) and reports whether every coefficient is < q.
func testCoefficientsBelowQ(b []byte) bool {
	for i := 0; i < len(b)*8/12; i++ {
		var c int
		for j := 0; j < 12; j++ {
			bit := i*12 + j
			c |= int(b[bit/8]>>(bit%8)&1) << j
		}
		if c >= 3329 {
			return false
		}
	}
	return true
}

// TestKEMSecretKeyInputChecks: FIPS 203's input checks on an expanded
// decapsulation key. A coefficient of ŝ at or above q is refused (circl
// would reduce it silently, so two encodings would give one key); so are a
// wrong H(ek), an ek changed under its hash, and an ek with a coefficient
// at or above q whose hash was fixed up (§7.2 on the embedded key). z
// cannot be checked.
func TestKEMSecretKeyInputChecks(t *testing.T) {
	f := negSetup(t)
	valid := f.id.KEMSecretKey
	setCoeff := func(b []byte, i int, c uint16) { // coefficient i of a ByteEncode₁₂ string
		o := i / 2 * 3
		if i%2 == 0 {
			b[o] = byte(c)
			b[o+1] = b[o+1]&0xf0 | byte(c>>8)
		} else {
			b[o+1] = b[o+1]&0x0f | byte(c<<4)
			b[o+2] = byte(c >> 4)
		}
	}
	fixHash := func(b []byte) {
		h := sha3.Sum256(b[1152:2336])
		copy(b[2336:2368], h[:])
	}
	for _, c := range []struct {
		name string
		mod  func(b []byte)
		ok   bool
	}{
		{"valid", func([]byte) {}, true},
		{"s[0]=q-1", func(b []byte) { setCoeff(b, 0, 3328) }, true},
		{"s[0]=q", func(b []byte) { setCoeff(b, 0, 3329) }, false},
		{"s[1]=4095", func(b []byte) { setCoeff(b, 1, 4095) }, false},
		{"s[767]=q", func(b []byte) { setCoeff(b, 767, 3329) }, false},
		{"s[383]=q+1", func(b []byte) { setCoeff(b, 383, 3330) }, false},
		{"H(ek) wrong", func(b []byte) { b[2340] ^= 0x80 }, false},
		{"ek changed", func(b []byte) { b[1500] ^= 1 }, false},
		{"ek changed, hash fixed", func(b []byte) { b[1500] ^= 1; fixHash(b) }, true},
		{"ek t[0]=q, hash fixed", func(b []byte) { setCoeff(b[1152:], 0, 3329); fixHash(b) }, false},
		{"ek t[767]=4095, hash fixed", func(b []byte) { setCoeff(b[1152:], 767, 4095); fixHash(b) }, false},
		{"z changed", func(b []byte) { b[2399] ^= 1 }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(valid)
			c.mod(b)
			if testCoefficientsBelowQ(b[:1152]) != kemCoefficientsCanonical(b[:1152]) {
				t.Fatal("kemCoefficientsCanonical disagrees with the reference decoding")
			}
			k, err := ParseKEMSecretKey(b)
			if !c.ok {
				if !errors.Is(err, ErrInvalidSecretKey) || k != nil {
					t.Fatalf("accepted: %v", err)
				}
				if _, err := Decapsulate(b, f.envelope[:KEMCiphertextSize]); !errors.Is(err, ErrInvalidSecretKey) {
					t.Fatalf("Decapsulate accepted it: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.Bytes(), b) {
				t.Fatal("an accepted key does not round-trip")
			}
		})
	}
}

func TestBadLengthsKEMCiphertext(t *testing.T) {
	f := negSetup(t)
	k, err := ParseKEMSecretKey(f.id.KEMSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	ct := f.envelope[:KEMCiphertextSize]
	want, _ := k.Decapsulate(ct)
	for _, n := range negLengths(KEMCiphertextSize) {
		c := negResize(ct, n)
		negCall(t, fmt.Sprintf("Decapsulate of %d bytes", n), func() {
			ss, err := k.Decapsulate(c)
			ss2, err2 := Decapsulate(f.id.KEMSecretKey, c)
			if n == KEMCiphertextSize {
				if err != nil || err2 != nil || !bytes.Equal(ss, want) || !bytes.Equal(ss2, want) {
					t.Fatalf("valid ciphertext: %v %v", err, err2)
				}
				return
			}
			negCheckErr(t, fmt.Sprintf("%d-byte ciphertext", n), err, ErrInvalidCiphertext, nil)
			negCheckErr(t, fmt.Sprintf("%d-byte ciphertext", n), err2, ErrInvalidCiphertext, nil)
			if ss != nil || ss2 != nil {
				t.Fatal("secret returned with an error")
			}
		})
	}
}

func TestBadLengthsDSAPublicKey(t *testing.T) {
	f := negSetup(t)
	secrets := negSecretStrings(f.id.DSAPublicKey)
	for _, n := range negLengths(DSAPublicKeySize) {
		b := negResize(f.id.DSAPublicKey, n)
		negCall(t, fmt.Sprintf("ML-DSA public key of %d bytes", n), func() {
			k, err := ParseDSAPublicKey(b)
			ok := Verify(b, negMessage, f.sig)
			_, err2 := NewPublicIdentity(f.id.KEMPublicKey, b)
			_, err3 := DeriveSessionID(f.id.KEMPublicKey, b)
			bad := &Identity{DSAPublicKey: b}
			ok2 := bad.Verify(negMessage, f.sig)
			_, err4 := bad.VerifySignedMessage(f.signed)
			if n == DSAPublicKeySize {
				if err != nil || !ok || err2 != nil || err3 != nil || !ok2 || err4 != nil || !bytes.Equal(k.Bytes(), b) {
					t.Fatalf("valid key: %v %v %v %v %v %v", err, ok, err2, err3, ok2, err4)
				}
				return
			}
			what := fmt.Sprintf("%d-byte DSA public key", n)
			negCheckErr(t, what+": ParseDSAPublicKey", err, ErrInvalidPublicKey, secrets)
			negCheckErr(t, what+": NewPublicIdentity", err2, ErrInvalidPublicKey, secrets)
			negCheckErr(t, what+": DeriveSessionID", err3, ErrInvalidPublicKey, secrets)
			negCheckErr(t, what+": VerifyMessage", err4, ErrInvalidPublicKey, secrets)
			if ok || ok2 || k != nil {
				t.Fatalf("%s: accepted", what)
			}
		})
	}
}

func TestDSAPublicKeyBitFlips(t *testing.T) {
	f := negSetup(t)
	// Every 1952-byte string is a syntactically valid ML-DSA-65 public key,
	// so a flipped bit parses, but the signature no longer verifies.
	for i := 0; i < DSAPublicKeySize; i += 61 {
		b := bytes.Clone(f.id.DSAPublicKey)
		b[i] ^= 0x80 >> (i % 8)
		negCall(t, fmt.Sprintf("DSA public key with byte %d flipped", i), func() {
			if _, err := ParseDSAPublicKey(b); err != nil {
				t.Fatalf("byte %d: %v", i, err)
			}
			if Verify(b, negMessage, f.sig) {
				t.Fatalf("signature verifies under a key with byte %d flipped", i)
			}
		})
	}
}

func TestBadLengthsDSASecretKey(t *testing.T) {
	f := negSetup(t)
	secrets := negSecretStrings(f.id.DSASecretKey)
	for _, n := range negLengths(DSASecretKeySize) {
		b := negResize(f.id.DSASecretKey, n)
		negCall(t, fmt.Sprintf("ML-DSA secret key of %d bytes", n), func() {
			_, err := ParseDSASecretKey(b)
			sig, err2 := Sign(b, negMessage)
			_, err3 := NewIdentity(f.id.KEMSecretKey, b)
			_, err4 := (&Identity{DSASecretKey: b}).SignMessage(negMessage)
			switch n {
			case DSASecretKeySize, DSASeedSize:
				if err != nil || err2 != nil || err3 != nil || err4 != nil {
					t.Fatalf("%d-byte key rejected: %v %v %v %v", n, err, err2, err3, err4)
				}
				if n == DSASecretKeySize && !Verify(f.id.DSAPublicKey, negMessage, sig) {
					t.Fatal("signature with the valid key does not verify")
				}
				return
			}
			what := fmt.Sprintf("%d-byte DSA secret key", n)
			negCheckErr(t, what+": ParseDSASecretKey", err, ErrInvalidSecretKey, secrets)
			negCheckErr(t, what+": Sign", err2, ErrInvalidSecretKey, secrets)
			negCheckErr(t, what+": NewIdentity", err3, ErrInvalidSecretKey, secrets)
			negCheckErr(t, what+": Identity.SignMessage", err4, ErrInvalidSecretKey, secrets)
			if sig != nil {
				t.Fatal("signature returned with an error")
			}
		})
	}
}

func TestBadLengthsSignature(t *testing.T) {
	f := negSetup(t)
	pk, err := ParseDSAPublicKey(f.id.DSAPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range negLengths(SignatureSize) {
		s := negResize(f.sig, n)
		negCall(t, fmt.Sprintf("signature of %d bytes", n), func() {
			got := []bool{
				Verify(f.id.DSAPublicKey, negMessage, s),
				VerifyContext(f.id.DSAPublicKey, nil, negMessage, s),
				pk.Verify(negMessage, s),
				f.id.Verify(negMessage, s),
			}
			for i, ok := range got {
				if ok != (n == SignatureSize) {
					t.Fatalf("%d-byte signature: verifier %d returned %v", n, i, ok)
				}
			}
		})
	}
}

func TestSignatureBitFlips(t *testing.T) {
	f := negSetup(t)
	pk, err := ParseDSAPublicKey(f.id.DSAPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// Every byte of c̃ (0..47) and of the hint (3248..3308), every 13th byte
	// of z, each with one bit flipped; and extreme hint encodings.
	for i := 0; i < SignatureSize; i++ {
		if i >= 48 && i < 3248 && i%13 != 0 {
			continue
		}
		s := bytes.Clone(f.sig)
		s[i] ^= 1 << (i % 8)
		negCall(t, fmt.Sprintf("signature with byte %d flipped", i), func() {
			if pk.Verify(negMessage, s) {
				t.Fatalf("signature with byte %d flipped verifies", i)
			}
		})
	}
	for _, fill := range []byte{0x00, 0xff, 0x37} {
		s := bytes.Clone(f.sig)
		for i := 3248; i < SignatureSize; i++ {
			s[i] = fill
		}
		negCall(t, fmt.Sprintf("hint filled with %#x", fill), func() {
			if pk.Verify(negMessage, s) {
				t.Fatalf("signature with hint filled with %#x verifies", fill)
			}
		})
		negCall(t, fmt.Sprintf("signature filled with %#x", fill), func() {
			if pk.Verify(negMessage, bytes.Repeat([]byte{fill}, SignatureSize)) {
				t.Fatalf("constant signature %#x verifies", fill)
			}
		})
	}
	// Message bit flips and context mismatch.
	for i := range negMessage {
		m := bytes.Clone(negMessage)
		m[i] ^= 1 << (i % 8)
		if pk.Verify(m, f.sig) {
			t.Fatalf("signature verifies a message with byte %d flipped", i)
		}
	}
	if pk.Verify(append(bytes.Clone(negMessage), 0), f.sig) || pk.Verify(negMessage[:len(negMessage)-1], f.sig) {
		t.Fatal("signature verifies an extended or truncated message")
	}
	if pk.VerifyContext([]byte{0}, negMessage, f.sig) {
		t.Fatal("empty-context signature verifies under context {0}")
	}
}

func TestContextTooLong(t *testing.T) {
	f := negSetup(t)
	for _, n := range []int{0, 1, MaxContextSize - 1, MaxContextSize, MaxContextSize + 1, 1000} {
		ctx := bytes.Repeat([]byte{'c'}, n)
		negCall(t, fmt.Sprintf("context of %d bytes", n), func() {
			sig, err := SignContext(f.id.DSASecretKey, ctx, negMessage)
			sig2, err2 := f.id.SignContext(ctx, negMessage)
			if n > MaxContextSize {
				if err == nil || err2 == nil || sig != nil || sig2 != nil {
					t.Fatalf("%d-byte context accepted for signing", n)
				}
				if VerifyContext(f.id.DSAPublicKey, ctx, negMessage, f.sig) {
					t.Fatalf("%d-byte context accepted for verification", n)
				}
				return
			}
			if err != nil || err2 != nil {
				t.Fatalf("%d-byte context: %v %v", n, err, err2)
			}
			if !VerifyContext(f.id.DSAPublicKey, ctx, negMessage, sig) || !f.id.VerifyContext(ctx, negMessage, sig2) {
				t.Fatalf("%d-byte context: signature does not verify", n)
			}
			if (n == 0) != Verify(f.id.DSAPublicKey, negMessage, sig) {
				t.Fatalf("%d-byte context: context not bound", n)
			}
		})
	}
}

func TestEnvelopeTruncationsAndExtensions(t *testing.T) {
	f := negSetup(t)
	k, err := ParseKEMSecretKey(f.id.KEMSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	secrets := negSecretStrings(f.id.KEMSecretKey)
	n := len(f.envelope)
	for l := 0; l <= n+64; l++ {
		e := negResize(f.envelope, l)
		negCall(t, fmt.Sprintf("envelope of %d bytes", l), func() {
			pt, err := k.decryptFromSender(e)
			if l == n {
				if err != nil || !bytes.Equal(pt, negPlaintext) {
					t.Fatalf("valid envelope: %v", err)
				}
				return
			}
			// Shorter than KEM ciphertext + nonce: malformed. Otherwise the
			// AEAD fails (a cut tag, a cut body or extra bytes).
			want := ErrDecryptionFailed
			if l < KEMCiphertextSize+NonceSize {
				want = ErrInvalidCiphertext
			}
			negCheckErr(t, fmt.Sprintf("%d-byte envelope", l), err, want, secrets)
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
		})
	}
	// The byte-slice and Identity entry points agree on the boundaries.
	for _, l := range []int{0, KEMCiphertextSize - 1, KEMCiphertextSize, KEMCiphertextSize + NonceSize - 1, KEMCiphertextSize + NonceSize, n - 1, n + 1} {
		want := ErrDecryptionFailed
		if l < KEMCiphertextSize+NonceSize {
			want = ErrInvalidCiphertext
		}
		e := negResize(f.envelope, l)
		_, err := DecryptFromSender(f.id.KEMSecretKey, e)
		negCheckErr(t, fmt.Sprintf("DecryptFromSender(%d bytes)", l), err, want, secrets)
		_, err = f.id.DecryptFrom(e)
		negCheckErr(t, fmt.Sprintf("Identity.DecryptFrom(%d bytes)", l), err, want, secrets)
	}
}

func TestEnvelopeBitFlips(t *testing.T) {
	f := negSetup(t)
	k, err := ParseKEMSecretKey(f.id.KEMSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	// One bit of every byte: KEM ciphertext, nonce, body and tag.
	for i := range f.envelope {
		e := bytes.Clone(f.envelope)
		e[i] ^= 1 << (i % 8)
		negCall(t, fmt.Sprintf("envelope with byte %d flipped", i), func() {
			pt, err := k.decryptFromSender(e)
			if !errors.Is(err, ErrDecryptionFailed) || pt != nil {
				t.Fatalf("byte %d flipped: %v", i, err)
			}
		})
	}
	// The wrong recipient.
	if _, err := f.other.DecryptFrom(f.envelope); !errors.Is(err, ErrDecryptionFailed) {
		t.Fatalf("wrong recipient: %v", err)
	}
}

func TestAEADBadInputs(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	ct, err := Encrypt(key, negPlaintext)
	if err != nil {
		t.Fatal(err)
	}
	if len(ct) != NonceSize+len(negPlaintext)+TagSize {
		t.Fatalf("Encrypt output %d bytes", len(ct))
	}
	secrets := negSecretStrings(append(bytes.Clone(key), key...))
	for _, n := range negLengths(KeySize) {
		kk := negResize(key, n)
		negCall(t, fmt.Sprintf("AEAD key of %d bytes", n), func() {
			c, err := Encrypt(kk, negPlaintext)
			p, err2 := Decrypt(kk, ct)
			if n == KeySize {
				if err != nil || err2 != nil || !bytes.Equal(p, negPlaintext) || len(c) != len(ct) {
					t.Fatalf("valid key: %v %v", err, err2)
				}
				return
			}
			negCheckErr(t, fmt.Sprintf("Encrypt with a %d-byte key", n), err, ErrInvalidSecretKey, secrets)
			negCheckErr(t, fmt.Sprintf("Decrypt with a %d-byte key", n), err2, ErrInvalidSecretKey, secrets)
		})
	}
	for l := 0; l <= len(ct)+2; l++ {
		c := negResize(ct, l)
		negCall(t, fmt.Sprintf("AEAD ciphertext of %d bytes", l), func() {
			p, err := Decrypt(key, c)
			switch {
			case l == len(ct):
				if err != nil || !bytes.Equal(p, negPlaintext) {
					t.Fatalf("valid ciphertext: %v", err)
				}
			case l < NonceSize:
				negCheckErr(t, fmt.Sprintf("%d-byte AEAD ciphertext", l), err, ErrInvalidCiphertext, secrets)
			default:
				negCheckErr(t, fmt.Sprintf("%d-byte AEAD ciphertext", l), err, ErrDecryptionFailed, secrets)
			}
		})
	}
	// Two encryptions of the same plaintext use different nonces.
	ct2, _ := Encrypt(key, negPlaintext)
	if bytes.Equal(ct[:NonceSize], ct2[:NonceSize]) {
		t.Error("Encrypt reused a nonce")
	}
}

func TestSignedMessageTruncationsAndExtensions(t *testing.T) {
	f := negSetup(t)
	pub := f.id.PublicIdentity()
	n := len(f.signed)
	for l := 0; l <= n+2; l++ {
		s := negResize(f.signed, l)
		negCall(t, fmt.Sprintf("signed message of %d bytes", l), func() {
			msg, err := pub.VerifySignedMessage(s)
			if l == n {
				if err != nil || !bytes.Equal(msg, negMessage) {
					t.Fatalf("valid signed message: %v", err)
				}
				return
			}
			negCheckErr(t, fmt.Sprintf("%d-byte signed message", l), err, ErrInvalidSignature, nil)
			if msg != nil {
				t.Fatal("message returned with an error")
			}
		})
	}
	// Bit flips across the signature and the message.
	for i := 0; i < n; i += 29 {
		s := bytes.Clone(f.signed)
		s[i] ^= 1 << (i % 8)
		negCall(t, fmt.Sprintf("signed message with byte %d flipped", i), func() {
			if _, err := pub.VerifySignedMessage(s); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("byte %d flipped: %v", i, err)
			}
		})
	}
	if _, err := f.other.VerifySignedMessage(f.signed); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("wrong verifier: %v", err)
	}
	// An exactly signature-sized input carries the empty message.
	empty, err := f.id.SignMessage(nil)
	if err != nil || len(empty) != SignatureSize {
		t.Fatalf("SignMessage(nil): %d bytes, %v", len(empty), err)
	}
	if msg, err := pub.VerifySignedMessage(empty); err != nil || len(msg) != 0 {
		t.Fatalf("VerifyMessage of an empty message: %q, %v", msg, err)
	}
}

func TestBadSessionIDs(t *testing.T) {
	f := negSetup(t)
	valid := f.sessionID
	check := func(s string, ok bool) {
		t.Helper()
		negCall(t, fmt.Sprintf("ParseSessionID(%q)", s), func() {
			p, err := ParseSessionID(s)
			if ok {
				if err != nil || p.String() != s {
					t.Fatalf("ParseSessionID(%q) = %v, %v", s, p, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidSessionID) {
				t.Fatalf("ParseSessionID(%q): %v, want ErrInvalidSessionID", s, err)
			}
			if len(s) >= 8 && strings.Contains(err.Error(), s[2:]) {
				t.Fatalf("error %q echoes the input", err)
			}
		})
	}
	check(valid, true)
	check(PrefixLegacy+valid[2:], true)
	// Every length, cut from the valid ID and extended with hex digits.
	for l := 0; l <= SessionIDLength+4; l++ {
		if l == SessionIDLength {
			continue
		}
		check((valid + "0123")[:l], false)
	}
	// Every byte value at every position.
	for i := 0; i < SessionIDLength; i++ {
		for c := 0; c < 256; c++ {
			b := []byte(valid)
			if b[i] == byte(c) {
				continue
			}
			b[i] = byte(c)
			s := string(b)
			ok := i >= 2 && ('0' <= c && c <= '9' || 'a' <= c && c <= 'f') ||
				i == 1 && c == '5' // "05" legacy
			check(s, ok)
		}
	}
	for _, s := range []string{
		"", "07", "0x" + valid[2:], strings.ToUpper(valid), "06" + valid[2:], "70" + valid[2:],
		" " + valid[1:], valid[:65] + "\n", valid[:64] + "é", "07" + strings.Repeat("g", 64),
	} {
		check(s, false)
	}
	// The legacy prefix parses but is not post-quantum.
	p, err := ParseSessionID(PrefixLegacy + valid[2:])
	if err != nil || p.IsPostQuantum() || p.Prefix != 0x05 {
		t.Fatalf("legacy ID: %v, %v", p, err)
	}
	q, _ := ParseSessionID(valid)
	if !q.IsPostQuantum() || q.Digest != p.Digest || hex.EncodeToString(q.Digest[:]) != valid[2:] {
		t.Fatal("digest or prefix parsed wrongly")
	}
}

// TestParseSessionIDZeroOnError checks that a failed parse returns the zero
// SessionID, so that a caller who forgets the error does not get a value
// that claims to be a post-quantum ID (IsPostQuantum true, zero digest).
func TestParseSessionIDZeroOnError(t *testing.T) {
	f := negSetup(t)
	for _, s := range []string{
		"07" + strings.Repeat("g", 64),
		"05" + strings.ToUpper(f.sessionID[2:]),
		f.sessionID[:65] + "X",
	} {
		p, err := ParseSessionID(s)
		if !errors.Is(err, ErrInvalidSessionID) {
			t.Fatalf("ParseSessionID(%q): %v", s, err)
		}
		if p != (SessionID{}) {
			t.Errorf("ParseSessionID(%q) returned %v (IsPostQuantum=%v) with an error; want the zero SessionID", s, p, p.IsPostQuantum())
		}
	}
}

// TestEmptyIdentityDoesNotPanic calls every method on identities with
// missing or malformed keys.
func TestEmptyIdentityDoesNotPanic(t *testing.T) {
	f := negSetup(t)
	for name, id := range map[string]*Identity{
		"zero":         {},
		"sessionOnly":  {SessionID: f.sessionID},
		"shortKeys":    {KEMPublicKey: []byte{1}, KEMSecretKey: []byte{2}, DSAPublicKey: []byte{3}, DSASecretKey: []byte{4}},
		"publicOnly":   f.id.PublicIdentity(),
		"swappedKinds": {KEMPublicKey: f.id.DSAPublicKey, DSAPublicKey: f.id.KEMPublicKey, KEMSecretKey: f.id.DSASecretKey, DSASecretKey: f.id.KEMSecretKey},
	} {
		t.Run(name, func(t *testing.T) {
			negCall(t, name, func() {
				if _, err := id.Sign(negMessage); err == nil {
					t.Error("Sign succeeded without a secret key")
				}
				if _, err := id.SignMessage(negMessage); err == nil {
					t.Error("SignMessage succeeded without a secret key")
				}
				if _, err := id.DecryptFrom(f.envelope); err == nil {
					t.Error("DecryptFrom succeeded")
				}
				// Only the public identity holds the signer's key.
				wantValid := name == "publicOnly"
				if id.Verify(negMessage, f.sig) != wantValid {
					t.Errorf("Verify = %v, want %v", !wantValid, wantValid)
				}
				if _, err := id.VerifySignedMessage(f.signed); (err == nil) != wantValid {
					t.Errorf("VerifyMessage: %v", err)
				}
				if name != "publicOnly" {
					if _, err := f.id.EncryptTo(id, negPlaintext); err == nil {
						t.Error("EncryptTo an identity without a valid KEM public key succeeded")
					}
					if err := id.Validate(); err == nil {
						t.Error("Validate accepted")
					}
				} else if err := id.Validate(); err != nil {
					t.Errorf("Validate of the public identity: %v", err)
				}
				_ = id.PublicIdentity()
				_ = id.String()
			})
		})
	}
}

// TestDSASecretKeyPublicAgreesWithItsBytes checks that the public key a
// parsed expanded ML-DSA key reports verifies exactly what its encoding
// verifies once parsed by anyone else. circl's PrivateKey.Public copies tr
// from the secret key rather than hashing the public key, so for a secret
// key with a corrupted tr the returned key (and any Identity built by
// NewIdentity from it) accepts signatures that every other verifier rejects.
func TestDSASecretKeyPublicAgreesWithItsBytes(t *testing.T) {
	f := negSetup(t)
	msg := []byte("tr check")
	for _, off := range []int{64, 100, 127} {
		b := bytes.Clone(f.id.DSASecretKey)
		b[off] ^= 0x10
		sk, err := ParseDSASecretKey(b)
		if err != nil {
			t.Fatal(err) // FIPS 204 has no check that rejects it at parse time
		}
		sig, err := sk.Sign(msg)
		if err != nil {
			t.Fatal(err)
		}
		reparsed, err := ParseDSAPublicKey(sk.Public().Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if reparsed.Verify(msg, sig) {
			t.Fatalf("tr byte %d: the corrupted key's signature verifies under its public key; the test is void", off)
		}
		if sk.Public().Verify(msg, sig) {
			t.Errorf("tr byte %d: DSASecretKey.Public() accepts a signature that ParseDSAPublicKey(Public().Bytes()) rejects", off)
		}
		id, err := NewIdentity(f.id.KEMSecretKey, b)
		if err != nil {
			t.Fatal(err)
		}
		if id.Verify(msg, sig) != Verify(id.DSAPublicKey, msg, sig) {
			t.Errorf("tr byte %d: Identity.Verify and Verify(id.DSAPublicKey) disagree", off)
		}
	}
}
