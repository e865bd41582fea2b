package crypto

import (
	"bytes"
	"crypto/sha3"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"golang.org/x/crypto/chacha20poly1305"
)

// Interop vectors from the reference implementation (see README.md beside
// the JSON files), shipped in testdata/reference so that these tests always
// run. SESSION_VECTORS_DIR points them at another copy (for example a new
// set from the reference's generator); TestReferenceVectorsPinned checks that
// the shipped files are the ones published with the reference.

// refvecHex is a byte string written as lowercase hex in the vector files.
type refvecHex []byte

func (h *refvecHex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s != "" {
		for _, c := range s {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return fmt.Errorf("not lowercase hex: %q", c)
			}
		}
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

type refvecIdentity struct {
	Index        int       `json:"index"`
	SessionID    string    `json:"sessionId"`
	KEMPublicKey refvecHex `json:"kemPublicKey"`
	KEMSecretKey refvecHex `json:"kemSecretKey"`
	DSAPublicKey refvecHex `json:"dsaPublicKey"`
	DSASecretKey refvecHex `json:"dsaSecretKey"`
}

type refvecSignature struct {
	Index             int       `json:"index"`
	Identity          int       `json:"identity"`
	MessageLength     int       `json:"messageLength"`
	MessageSeedString string    `json:"messageSeedString"`
	Message           refvecHex `json:"message"`
	Signature         refvecHex `json:"signature"`
	Expected          bool      `json:"expected"`
}

type refvecSignatureNegative struct {
	Index              int       `json:"index"`
	Case               string    `json:"case"`
	BasedOnVector      int       `json:"basedOnVector"`
	VerifyWithIdentity int       `json:"verifyWithIdentity"`
	Mutation           string    `json:"mutation"`
	Message            refvecHex `json:"message"`
	Signature          refvecHex `json:"signature"`
	Expected           bool      `json:"expected"`
}

type refvecEnvelope struct {
	Index               int       `json:"index"`
	Recipient           int       `json:"recipient"`
	PlaintextLength     int       `json:"plaintextLength"`
	PlaintextSeedString string    `json:"plaintextSeedString"`
	Plaintext           refvecHex `json:"plaintext"`
	Envelope            refvecHex `json:"envelope"`
	Nonce               refvecHex `json:"nonce"`
	KEMSharedSecret     refvecHex `json:"kemSharedSecret"`
}

type refvecEnvelopeNegative struct {
	Index                 int        `json:"index"`
	Case                  string     `json:"case"`
	BasedOnVector         int        `json:"basedOnVector"`
	DecryptWithIdentity   int        `json:"decryptWithIdentity"`
	Mutation              string     `json:"mutation"`
	Envelope              refvecHex  `json:"envelope"`
	ExpectedError         string     `json:"expectedError"`
	ReferenceErrorMessage string     `json:"referenceErrorMessage"`
	DecapsulatedKey       *refvecHex `json:"decapsulatedKey"`
}

type refvecSignedMessage struct {
	Index             int       `json:"index"`
	Signer            int       `json:"signer"`
	MessageLength     int       `json:"messageLength"`
	MessageSeedString string    `json:"messageSeedString"`
	Message           refvecHex `json:"message"`
	SignedMessage     refvecHex `json:"signedMessage"`
}

type refvecSignedMessageNegative struct {
	Index              int       `json:"index"`
	Case               string    `json:"case"`
	BasedOnVector      int       `json:"basedOnVector"`
	VerifyWithIdentity int       `json:"verifyWithIdentity"`
	Mutation           string    `json:"mutation"`
	SignedMessage      refvecHex `json:"signedMessage"`
	Expected           bool      `json:"expected"`
}

type refvecSet struct {
	Identities struct {
		Identities []refvecIdentity `json:"identities"`
	}
	Signatures struct {
		Vectors  []refvecSignature         `json:"vectors"`
		Negative []refvecSignatureNegative `json:"negative"`
	}
	Envelopes struct {
		Vectors  []refvecEnvelope         `json:"vectors"`
		Negative []refvecEnvelopeNegative `json:"negative"`
	}
	SignedMessages struct {
		Vectors  []refvecSignedMessage         `json:"vectors"`
		Negative []refvecSignedMessageNegative `json:"negative"`
	}
}

// refvecFiles maps each vector file to the field of refvecSet it fills.
var refvecFiles = map[string]func(*refvecSet) any{
	"identities.json":      func(s *refvecSet) any { return &s.Identities },
	"signatures.json":      func(s *refvecSet) any { return &s.Signatures },
	"envelopes.json":       func(s *refvecSet) any { return &s.Envelopes },
	"signed_messages.json": func(s *refvecSet) any { return &s.SignedMessages },
}

// refvecShippedDir holds the vectors inside the repository.
const refvecShippedDir = "testdata/reference"

// refvecDir is SESSION_VECTORS_DIR if set, else the shipped copy.
func refvecDir() string {
	if d := os.Getenv("SESSION_VECTORS_DIR"); d != "" {
		return d
	}
	return refvecShippedDir
}

var (
	refvecOnce   sync.Once
	refvecLoaded *refvecSet
	refvecErr    error
)

// refvecLoad returns the parsed vector files, failing the test (never
// skipping it) if they are missing or do not parse.
func refvecLoad(tb testing.TB) *refvecSet {
	tb.Helper()
	dir := refvecDir()
	refvecOnce.Do(func() {
		s := new(refvecSet)
		for name, field := range refvecFiles {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				refvecErr = err
				return
			}
			if err := json.Unmarshal(b, field(s)); err != nil {
				refvecErr = fmt.Errorf("%s: %w", name, err)
				return
			}
		}
		refvecLoaded = s
	})
	if refvecErr != nil {
		tb.Fatalf("loading reference vectors from %s: %v", dir, refvecErr)
	}
	return refvecLoaded
}

// refvecSeedData is the deterministic test data of the vector files: the
// first n bytes of SHAKE256(seedString).
func refvecSeedData(seedString string, n int) []byte {
	if n == 0 {
		return []byte{}
	}
	return sha3.SumSHAKE256([]byte(seedString), n)
}

func TestReferenceVectorFiles(t *testing.T) {
	s := refvecLoad(t)
	dir := refvecDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".json" {
			continue
		}
		seen = append(seen, e.Name())
		if _, ok := refvecFiles[e.Name()]; !ok {
			t.Errorf("vector file %s is not walked by any test", e.Name())
		}
	}
	sort.Strings(seen)
	if len(seen) != len(refvecFiles) {
		t.Errorf("vector files: got %v, want the %d known files", seen, len(refvecFiles))
	}
	// Counts stated in the README: a decoding slip that drops cases fails here.
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"identities", len(s.Identities.Identities), 20},
		{"signatures", len(s.Signatures.Vectors), 20},
		{"signatures negative", len(s.Signatures.Negative), 5},
		{"envelopes", len(s.Envelopes.Vectors), 20},
		{"envelopes negative", len(s.Envelopes.Negative), 14},
		{"signed messages", len(s.SignedMessages.Vectors), 10},
		{"signed messages negative", len(s.SignedMessages.Negative), 5},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d cases, want %d", c.name, c.got, c.want)
		}
	}
	for i, id := range s.Identities.Identities {
		if id.Index != i {
			t.Errorf("identity %d has index %d", i, id.Index)
		}
	}
}

func refvecIdentityAt(t *testing.T, s *refvecSet, i int) refvecIdentity {
	t.Helper()
	if i < 0 || i >= len(s.Identities.Identities) {
		t.Fatalf("identity index %d out of range", i)
	}
	return s.Identities.Identities[i]
}

func TestReferenceIdentities(t *testing.T) {
	s := refvecLoad(t)
	for _, v := range s.Identities.Identities {
		t.Run(fmt.Sprintf("identity/%d", v.Index), func(t *testing.T) {
			if len(v.KEMPublicKey) != KEMPublicKeySize || len(v.KEMSecretKey) != KEMSecretKeySize ||
				len(v.DSAPublicKey) != DSAPublicKeySize || len(v.DSASecretKey) != DSASecretKeySize {
				t.Fatalf("vector sizes %d/%d/%d/%d", len(v.KEMPublicKey), len(v.KEMSecretKey), len(v.DSAPublicKey), len(v.DSASecretKey))
			}

			// Session ID.
			sid, err := DeriveSessionID(v.KEMPublicKey, v.DSAPublicKey)
			if err != nil || sid != v.SessionID {
				t.Fatalf("DeriveSessionID = %q, %v; want %q", sid, err, v.SessionID)
			}
			p, err := ParseSessionID(v.SessionID)
			if err != nil || !p.IsPostQuantum() || p.String() != v.SessionID {
				t.Errorf("ParseSessionID(%q) = %v, %v", v.SessionID, p, err)
			}

			// Key layouts the README states, checked independently of us.
			if !bytes.Equal(v.KEMSecretKey[1152:2336], v.KEMPublicKey) {
				t.Error("kemSecretKey[1152:2336] != kemPublicKey")
			}
			if h := sha3.Sum256(v.KEMPublicKey); !bytes.Equal(v.KEMSecretKey[2336:2368], h[:]) {
				t.Error("kemSecretKey[2336:2368] != SHA3-256(kemPublicKey)")
			}
			if !bytes.Equal(v.DSASecretKey[:32], v.DSAPublicKey[:32]) {
				t.Error("dsaSecretKey rho != dsaPublicKey rho")
			}
			if tr := sha3.SumSHAKE256(v.DSAPublicKey, 64); !bytes.Equal(v.DSASecretKey[64:128], tr) {
				t.Error("dsaSecretKey tr != SHAKE256(dsaPublicKey)")
			}

			// The 2400-byte ML-KEM key loads, gives the recorded public key
			// and packs back to the same bytes.
			kemSK, err := ParseKEMSecretKey(v.KEMSecretKey)
			if err != nil {
				t.Fatalf("ParseKEMSecretKey(2400 bytes): %v", err)
			}
			if !bytes.Equal(kemSK.Public().Bytes(), v.KEMPublicKey) {
				t.Error("ML-KEM public key of the loaded secret key differs from kemPublicKey")
			}
			if !bytes.Equal(kemSK.Bytes(), v.KEMSecretKey) {
				t.Error("ML-KEM secret key does not pack back to the same bytes")
			}
			kemPK, err := ParseKEMPublicKey(v.KEMPublicKey)
			if err != nil || !bytes.Equal(kemPK.Bytes(), v.KEMPublicKey) {
				t.Fatalf("ParseKEMPublicKey: %v", err)
			}

			// The 4032-byte ML-DSA key likewise.
			dsaSK, err := ParseDSASecretKey(v.DSASecretKey)
			if err != nil {
				t.Fatalf("ParseDSASecretKey(4032 bytes): %v", err)
			}
			if !bytes.Equal(dsaSK.Public().Bytes(), v.DSAPublicKey) {
				t.Error("ML-DSA public key of the loaded secret key differs from dsaPublicKey")
			}
			if !bytes.Equal(dsaSK.Bytes(), v.DSASecretKey) {
				t.Error("ML-DSA secret key does not pack back to the same bytes")
			}
			dsaPK, err := ParseDSAPublicKey(v.DSAPublicKey)
			if err != nil || !bytes.Equal(dsaPK.Bytes(), v.DSAPublicKey) {
				t.Fatalf("ParseDSAPublicKey: %v", err)
			}

			// NewIdentity from the expanded secret keys.
			id, err := NewIdentity(v.KEMSecretKey, v.DSASecretKey)
			if err != nil {
				t.Fatalf("NewIdentity: %v", err)
			}
			if id.SessionID != v.SessionID || !bytes.Equal(id.KEMPublicKey, v.KEMPublicKey) ||
				!bytes.Equal(id.DSAPublicKey, v.DSAPublicKey) || !bytes.Equal(id.KEMSecretKey, v.KEMSecretKey) ||
				!bytes.Equal(id.DSASecretKey, v.DSASecretKey) {
				t.Error("NewIdentity does not reproduce the reference identity")
			}
			if err := id.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			pub, err := NewPublicIdentity(v.KEMPublicKey, v.DSAPublicKey)
			if err != nil || pub.SessionID != v.SessionID {
				t.Errorf("NewPublicIdentity = %v, %v", pub, err)
			}
			// The reference's JSON form of an identity, decoded by hand.
			js, _ := json.Marshal(map[string]any{
				"sessionId": v.SessionID, "kemPublicKey": []byte(v.KEMPublicKey), "kemSecretKey": []byte(v.KEMSecretKey),
				"dsaPublicKey": []byte(v.DSAPublicKey), "dsaSecretKey": []byte(v.DSASecretKey),
			})
			var decoded Identity
			if err := json.Unmarshal(js, &decoded); err != nil {
				t.Fatal(err)
			}
			if err := decoded.Validate(); err != nil {
				t.Errorf("Validate of a JSON-decoded identity: %v", err)
			}

			msg := []byte(fmt.Sprintf("session interop message %d", v.Index))

			// Our signatures with the loaded key verify under plain circl
			// ML-DSA-65 with a nil context, and under Verify.
			var circlPK mldsa65.PublicKey
			if err := circlPK.UnmarshalBinary(v.DSAPublicKey); err != nil {
				t.Fatal(err)
			}
			for name, sign := range map[string]func() ([]byte, error){
				"Sign":          func() ([]byte, error) { return Sign(v.DSASecretKey, msg) },
				"DSASecretKey":  func() ([]byte, error) { return dsaSK.Sign(msg) },
				"Identity.Sign": func() ([]byte, error) { return id.Sign(msg) },
			} {
				sig, err := sign()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if len(sig) != SignatureSize {
					t.Fatalf("%s: signature length %d", name, len(sig))
				}
				if !mldsa65.Verify(&circlPK, msg, nil, sig) {
					t.Errorf("%s: our signature does not verify under circl mldsa65.Verify with nil context", name)
				}
				if !Verify(v.DSAPublicKey, msg, sig) {
					t.Errorf("%s: our signature does not verify under Verify", name)
				}
				if VerifyContext(v.DSAPublicKey, []byte("x"), msg, sig) {
					t.Errorf("%s: signature with empty context verifies under context \"x\"", name)
				}
			}
			// Deterministic signing through our parse of the expanded key
			// equals circl's through its own unpacking of the same bytes.
			var circlSK mldsa65.PrivateKey
			if err := circlSK.UnmarshalBinary(v.DSASecretKey); err != nil {
				t.Fatal(err)
			}
			want := make([]byte, SignatureSize)
			if err := mldsa65.SignTo(&circlSK, msg, nil, false, want); err != nil {
				t.Fatal(err)
			}
			got, err := dsaSK.sign(nil, msg, false)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("deterministic signature differs from circl's: %v", err)
			}

			// Encapsulation to the recorded public key decapsulates with the
			// loaded 2400-byte key, in our code and in circl.
			ct, ss, err := Encapsulate(v.KEMPublicKey)
			if err != nil {
				t.Fatal(err)
			}
			ss2, err := Decapsulate(v.KEMSecretKey, ct)
			if err != nil || !bytes.Equal(ss, ss2) {
				t.Errorf("Decapsulate(Encapsulate) mismatch: %v", err)
			}
			var circlKEM mlkem768.PrivateKey
			if err := circlKEM.Unpack(v.KEMSecretKey); err != nil {
				t.Fatal(err)
			}
			ss3 := make([]byte, KEMSharedSecretSize)
			circlKEM.DecapsulateTo(ss3, ct)
			if !bytes.Equal(ss, ss3) {
				t.Error("circl decapsulation of our ciphertext gives a different secret")
			}

			// Our envelope, opened by hand the way the reference does.
			env, err := EncryptToRecipient(v.KEMPublicKey, msg)
			if err != nil {
				t.Fatal(err)
			}
			if len(env) != len(msg)+RecipientOverhead {
				t.Fatalf("envelope length %d, want %d", len(env), len(msg)+RecipientOverhead)
			}
			circlKEM.DecapsulateTo(ss3, env[:KEMCiphertextSize])
			aead, err := chacha20poly1305.NewX(ss3)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := aead.Open(nil, env[KEMCiphertextSize:KEMCiphertextSize+NonceSize], env[KEMCiphertextSize+NonceSize:], nil)
			if err != nil || !bytes.Equal(pt, msg) {
				t.Errorf("our envelope does not open by the reference method: %v", err)
			}
			pt, err = id.DecryptFrom(env)
			if err != nil || !bytes.Equal(pt, msg) {
				t.Errorf("Identity.DecryptFrom: %v", err)
			}
		})
	}
}

func TestReferenceSignatures(t *testing.T) {
	s := refvecLoad(t)
	for _, v := range s.Signatures.Vectors {
		t.Run(fmt.Sprintf("vector/%d", v.Index), func(t *testing.T) {
			id := refvecIdentityAt(t, s, v.Identity)
			if len(v.Message) != v.MessageLength {
				t.Fatalf("message length %d, want %d", len(v.Message), v.MessageLength)
			}
			if !bytes.Equal(v.Message, refvecSeedData(v.MessageSeedString, v.MessageLength)) {
				t.Errorf("message is not SHAKE256(%q)[:%d]", v.MessageSeedString, v.MessageLength)
			}
			if got := Verify(id.DSAPublicKey, v.Message, v.Signature); got != v.Expected {
				t.Errorf("Verify = %v, want %v", got, v.Expected)
			}
			pk, err := ParseDSAPublicKey(id.DSAPublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if got := pk.Verify(v.Message, v.Signature); got != v.Expected {
				t.Errorf("DSAPublicKey.Verify = %v, want %v", got, v.Expected)
			}
			pub, err := NewPublicIdentity(id.KEMPublicKey, id.DSAPublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if got := pub.Verify(v.Message, v.Signature); got != v.Expected {
				t.Errorf("Identity.Verify = %v, want %v", got, v.Expected)
			}
			if VerifyContext(id.DSAPublicKey, []byte("x"), v.Message, v.Signature) {
				t.Error("reference signature verifies under context \"x\"")
			}
			if Verify(id.DSAPublicKey, v.Message, v.Signature[:SignatureSize-1]) {
				t.Error("3308-byte signature verifies")
			}
			if Verify(id.DSAPublicKey, v.Message, append(bytes.Clone(v.Signature), 0)) {
				t.Error("3310-byte signature verifies")
			}
		})
	}
	for _, v := range s.Signatures.Negative {
		t.Run(fmt.Sprintf("negative/%d/%s", v.Index, v.Case), func(t *testing.T) {
			if v.Expected {
				t.Fatalf("negative case with expected=true")
			}
			id := refvecIdentityAt(t, s, v.VerifyWithIdentity)
			if Verify(id.DSAPublicKey, v.Message, v.Signature) {
				t.Errorf("Verify accepted %s (%s)", v.Case, v.Mutation)
			}
			var circlPK mldsa65.PublicKey
			if err := circlPK.UnmarshalBinary(id.DSAPublicKey); err != nil {
				t.Fatal(err)
			}
			if mldsa65.Verify(&circlPK, v.Message, nil, v.Signature) {
				t.Errorf("circl accepted %s: the vector is not a negative case", v.Case)
			}
			pub, err := NewPublicIdentity(id.KEMPublicKey, id.DSAPublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if pub.Verify(v.Message, v.Signature) {
				t.Errorf("Identity.Verify accepted %s", v.Case)
			}
			// The unmutated vector does verify, so the failure above is due
			// to the mutation alone.
			base := s.Signatures.Vectors[v.BasedOnVector]
			if !Verify(refvecIdentityAt(t, s, base.Identity).DSAPublicKey, base.Message, base.Signature) {
				t.Errorf("base vector %d does not verify", v.BasedOnVector)
			}
		})
	}
}

func TestReferenceSignedMessages(t *testing.T) {
	s := refvecLoad(t)
	for _, v := range s.SignedMessages.Vectors {
		t.Run(fmt.Sprintf("vector/%d", v.Index), func(t *testing.T) {
			if want := (3*v.Index + 1) % 20; v.Signer != want {
				t.Errorf("signer %d, README says %d", v.Signer, want)
			}
			ref := refvecIdentityAt(t, s, v.Signer)
			if len(v.Message) != v.MessageLength || !bytes.Equal(v.Message, refvecSeedData(v.MessageSeedString, v.MessageLength)) {
				t.Errorf("message is not SHAKE256(%q)[:%d]", v.MessageSeedString, v.MessageLength)
			}
			if len(v.SignedMessage) != SignatureSize+len(v.Message) || !bytes.Equal(v.SignedMessage[SignatureSize:], v.Message) {
				t.Fatal("signedMessage is not signature || message")
			}
			full, err := NewIdentity(ref.KEMSecretKey, ref.DSASecretKey)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := NewPublicIdentity(ref.KEMPublicKey, ref.DSAPublicKey)
			if err != nil {
				t.Fatal(err)
			}
			dsaOnly := &Identity{DSAPublicKey: bytes.Clone(ref.DSAPublicKey)}
			for name, id := range map[string]*Identity{"full": full, "public": pub, "dsaPublicKeyOnly": dsaOnly} {
				msg, err := id.VerifySignedMessage(v.SignedMessage)
				if err != nil {
					t.Errorf("%s: VerifyMessage: %v", name, err)
					continue
				}
				if !bytes.Equal(msg, v.Message) {
					t.Errorf("%s: VerifyMessage returned a different message", name)
				}
				if msg == nil {
					t.Errorf("%s: VerifyMessage returned nil for a valid message", name)
				}
				// The reference's form: (message, true).
				if msg, ok := id.VerifyMessage(v.SignedMessage); !ok || msg == nil || !bytes.Equal(msg, v.Message) {
					t.Errorf("%s: reference-form VerifyMessage = %x, %v", name, msg, ok)
				}
			}
			// Our SignMessage with the loaded key is accepted by the
			// public-only identity and has the same layout.
			ours, err := full.SignMessage(v.Message)
			if err != nil {
				t.Fatal(err)
			}
			if len(ours) != len(v.SignedMessage) || !bytes.Equal(ours[SignatureSize:], v.Message) {
				t.Error("SignMessage layout differs from the reference")
			}
			if msg, err := dsaOnly.VerifySignedMessage(ours); err != nil || !bytes.Equal(msg, v.Message) {
				t.Errorf("VerifyMessage(SignMessage): %v", err)
			}
		})
	}
	for _, v := range s.SignedMessages.Negative {
		t.Run(fmt.Sprintf("negative/%d/%s", v.Index, v.Case), func(t *testing.T) {
			if v.Expected {
				t.Fatal("negative case with expected=true")
			}
			ref := refvecIdentityAt(t, s, v.VerifyWithIdentity)
			pub, err := NewPublicIdentity(ref.KEMPublicKey, ref.DSAPublicKey)
			if err != nil {
				t.Fatal(err)
			}
			full, err := NewIdentity(ref.KEMSecretKey, ref.DSASecretKey)
			if err != nil {
				t.Fatal(err)
			}
			for name, id := range map[string]*Identity{"full": full, "public": pub} {
				msg, err := id.VerifySignedMessage(v.SignedMessage)
				if !errors.Is(err, ErrInvalidSignature) {
					t.Errorf("%s: VerifyMessage(%s) error = %v, want ErrInvalidSignature", name, v.Case, err)
				}
				if msg != nil {
					t.Errorf("%s: VerifyMessage(%s) returned a message", name, v.Case)
				}
				if msg, ok := id.VerifyMessage(v.SignedMessage); ok || msg != nil {
					t.Errorf("%s: reference-form VerifyMessage(%s) = %x, %v; want nil, false", name, v.Case, msg, ok)
				}
			}
		})
	}
}

func refvecSentinel(name string) (want, other error, ok bool) {
	switch name {
	case "ErrInvalidCiphertext":
		return ErrInvalidCiphertext, ErrDecryptionFailed, true
	case "ErrDecryptionFailed":
		return ErrDecryptionFailed, ErrInvalidCiphertext, true
	}
	return nil, nil, false
}

func TestReferenceEnvelopes(t *testing.T) {
	s := refvecLoad(t)
	for _, v := range s.Envelopes.Vectors {
		t.Run(fmt.Sprintf("vector/%d", v.Index), func(t *testing.T) {
			ref := refvecIdentityAt(t, s, v.Recipient)
			if len(v.Plaintext) != v.PlaintextLength || !bytes.Equal(v.Plaintext, refvecSeedData(v.PlaintextSeedString, v.PlaintextLength)) {
				t.Errorf("plaintext is not SHAKE256(%q)[:%d]", v.PlaintextSeedString, v.PlaintextLength)
			}
			if len(v.Envelope) != v.PlaintextLength+RecipientOverhead {
				t.Fatalf("envelope length %d, want %d", len(v.Envelope), v.PlaintextLength+RecipientOverhead)
			}
			if !bytes.Equal(v.Nonce, v.Envelope[KEMCiphertextSize:KEMCiphertextSize+NonceSize]) {
				t.Error("nonce field differs from envelope[1088:1112]")
			}
			pt, err := DecryptFromSender(ref.KEMSecretKey, v.Envelope)
			if err != nil {
				t.Fatalf("DecryptFromSender: %v", err)
			}
			if !bytes.Equal(pt, v.Plaintext) {
				t.Error("DecryptFromSender gave a different plaintext")
			}
			ss, err := Decapsulate(ref.KEMSecretKey, v.Envelope[:KEMCiphertextSize])
			if err != nil || !bytes.Equal(ss, v.KEMSharedSecret) {
				t.Errorf("Decapsulate = %x, %v; want kemSharedSecret %x", ss, err, []byte(v.KEMSharedSecret))
			}
			// The AEAD layer alone, under the recorded shared secret.
			pt, err = Decrypt(v.KEMSharedSecret, v.Envelope[KEMCiphertextSize:])
			if err != nil || !bytes.Equal(pt, v.Plaintext) {
				t.Errorf("Decrypt(kemSharedSecret, envelope[1088:]): %v", err)
			}
			id, err := NewIdentity(ref.KEMSecretKey, ref.DSASecretKey)
			if err != nil {
				t.Fatal(err)
			}
			pt, err = id.DecryptFrom(v.Envelope)
			if err != nil || !bytes.Equal(pt, v.Plaintext) {
				t.Errorf("Identity.DecryptFrom: %v", err)
			}
		})
	}
	for _, v := range s.Envelopes.Negative {
		t.Run(fmt.Sprintf("negative/%d/%s", v.Index, v.Case), func(t *testing.T) {
			want, other, ok := refvecSentinel(v.ExpectedError)
			if !ok {
				t.Fatalf("unknown expectedError %q", v.ExpectedError)
			}
			ref := refvecIdentityAt(t, s, v.DecryptWithIdentity)
			pt, err := DecryptFromSender(ref.KEMSecretKey, v.Envelope)
			if !errors.Is(err, want) || errors.Is(err, other) {
				t.Errorf("DecryptFromSender(%s) error = %v, want %v (%s)", v.Case, err, want, v.Mutation)
			}
			if pt != nil {
				t.Errorf("DecryptFromSender(%s) returned a plaintext", v.Case)
			}
			id, err := NewIdentity(ref.KEMSecretKey, ref.DSASecretKey)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := id.DecryptFrom(v.Envelope); !errors.Is(err, want) {
				t.Errorf("Identity.DecryptFrom(%s) error = %v, want %v", v.Case, err, want)
			}

			if len(v.Envelope) < KEMCiphertextSize {
				if v.DecapsulatedKey != nil {
					t.Errorf("decapsulatedKey present for a %d-byte input", len(v.Envelope))
				}
				return
			}
			if v.DecapsulatedKey == nil {
				t.Fatalf("decapsulatedKey missing for a %d-byte input", len(v.Envelope))
			}
			// Implicit rejection: Decapsulate never fails on a 1088-byte
			// ciphertext, and gives the reference's key.
			c := v.Envelope[:KEMCiphertextSize]
			ss, err := Decapsulate(ref.KEMSecretKey, c)
			if err != nil {
				t.Fatalf("Decapsulate: %v", err)
			}
			if !bytes.Equal(ss, *v.DecapsulatedKey) {
				t.Errorf("Decapsulate = %x, want decapsulatedKey %x", ss, []byte(*v.DecapsulatedKey))
			}
			base := s.Envelopes.Vectors[v.BasedOnVector]
			if v.Case == "wrong_recipient" || strings.HasPrefix(v.Case, "kem_bitflip") {
				// K̄ = SHAKE256(z || c)[:32], z = secret key bytes [2368,2400).
				kbar := sha3.SumSHAKE256(append(bytes.Clone(ref.KEMSecretKey[2368:2400]), c...), 32)
				if !bytes.Equal(ss, kbar) {
					t.Error("decapsulated key is not the implicit-rejection key SHAKE256(z || c)")
				}
				if bytes.Equal(ss, base.KEMSharedSecret) {
					t.Error("tampered KEM ciphertext gave the original shared secret")
				}
			} else if !bytes.Equal(ss, base.KEMSharedSecret) {
				t.Error("unchanged KEM ciphertext gave a different shared secret")
			}
		})
	}
}

// TestSeedFormSecretKeys checks that the 64-byte ML-KEM seed d || z and the
// 32-byte ML-DSA seed ξ load and give the same keys as circl's
// NewKeyFromSeed, and that the seed and expanded forms work alike.
func TestSeedFormSecretKeys(t *testing.T) {
	stream := sha3.NewSHAKE256()
	stream.Write([]byte("luxfi/session test: seed-form secret keys"))
	for i := 0; i < 4; i++ {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			kemSeed := make([]byte, KEMSeedSize)
			dsaSeed := make([]byte, DSASeedSize)
			stream.Read(kemSeed)
			stream.Read(dsaSeed)

			cpk, csk := mlkem768.NewKeyFromSeed(kemSeed)
			wantPK := make([]byte, KEMPublicKeySize)
			wantSK := make([]byte, KEMSecretKeySize)
			cpk.Pack(wantPK)
			csk.Pack(wantSK)
			k, err := ParseKEMSecretKey(kemSeed)
			if err != nil {
				t.Fatalf("ParseKEMSecretKey(64-byte seed): %v", err)
			}
			if !bytes.Equal(k.Public().Bytes(), wantPK) || !bytes.Equal(k.Bytes(), wantSK) {
				t.Error("ML-KEM seed form differs from circl NewKeyFromSeed")
			}

			dpk, dsk := mldsa65.NewKeyFromSeed((*[DSASeedSize]byte)(dsaSeed))
			d, err := ParseDSASecretKey(dsaSeed)
			if err != nil {
				t.Fatalf("ParseDSASecretKey(32-byte seed): %v", err)
			}
			if !bytes.Equal(d.Public().Bytes(), dpk.Bytes()) || !bytes.Equal(d.Bytes(), dsk.Bytes()) {
				t.Error("ML-DSA seed form differs from circl NewKeyFromSeed")
			}

			fromSeed, err := NewIdentity(kemSeed, dsaSeed)
			if err != nil {
				t.Fatal(err)
			}
			expanded, err := NewIdentity(wantSK, dsk.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if fromSeed.SessionID != expanded.SessionID || !bytes.Equal(fromSeed.KEMSecretKey, expanded.KEMSecretKey) ||
				!bytes.Equal(fromSeed.DSASecretKey, expanded.DSASecretKey) {
				t.Error("seed and expanded forms give different identities")
			}
			if sid, _ := DeriveSessionID(wantPK, dpk.Bytes()); sid != fromSeed.SessionID {
				t.Error("Session ID of the seed-form identity is not DeriveSessionID of its public keys")
			}

			// The byte-slice functions accept both forms interchangeably.
			ct, ss, err := Encapsulate(wantPK)
			if err != nil {
				t.Fatal(err)
			}
			for _, sk := range [][]byte{kemSeed, wantSK} {
				if got, err := Decapsulate(sk, ct); err != nil || !bytes.Equal(got, ss) {
					t.Errorf("Decapsulate with a %d-byte key: %v", len(sk), err)
				}
			}
			for _, sk := range [][]byte{dsaSeed, dsk.Bytes()} {
				sig, err := Sign(sk, []byte("m"))
				if err != nil || !mldsa65.Verify(dpk, []byte("m"), nil, sig) {
					t.Errorf("Sign with a %d-byte key: %v", len(sk), err)
				}
			}
			// Deterministic signatures agree between the two forms.
			s1, _ := d.sign(nil, []byte("m"), false)
			d2, _ := ParseDSASecretKey(dsk.Bytes())
			s2, _ := d2.sign(nil, []byte("m"), false)
			if !bytes.Equal(s1, s2) {
				t.Error("deterministic signatures differ between seed and expanded forms")
			}
		})
	}
}
