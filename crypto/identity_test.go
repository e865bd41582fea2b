package crypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"golang.org/x/crypto/blake2b"
)

func idtSeed(b byte) (seed [SeedSize]byte) {
	for i := range seed {
		seed[i] = b + byte(i)
	}
	return seed
}

func idtMust(t *testing.T, seed [SeedSize]byte) *Identity {
	t.Helper()
	id, err := IdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestGenerateIdentityShape(t *testing.T) {
	a, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []*Identity{a, b} {
		if SessionIDLength != 66 || len(id.SessionID) != 66 || !strings.HasPrefix(id.SessionID, "07") {
			t.Errorf("SessionID %q: want 66 characters starting with 07", id.SessionID)
		}
		if p, err := ParseSessionID(id.SessionID); err != nil || !p.IsPostQuantum() || p.String() != id.SessionID {
			t.Errorf("ParseSessionID(%q) = %v, %v", id.SessionID, p, err)
		}
		if len(id.KEMPublicKey) != 1184 || len(id.KEMSecretKey) != 2400 || len(id.DSAPublicKey) != 1952 || len(id.DSASecretKey) != 4032 {
			t.Errorf("key sizes %d/%d/%d/%d, want 1184/2400/1952/4032",
				len(id.KEMPublicKey), len(id.KEMSecretKey), len(id.DSAPublicKey), len(id.DSASecretKey))
		}
		if sid, err := DeriveSessionID(id.KEMPublicKey, id.DSAPublicKey); err != nil || sid != id.SessionID {
			t.Errorf("DeriveSessionID = %q, %v; want %q", sid, err, id.SessionID)
		}
		h := blake2b.Sum256(append(bytes.Clone(id.KEMPublicKey), id.DSAPublicKey...))
		if id.SessionID != "07"+hex.EncodeToString(h[:]) {
			t.Error("SessionID is not 07 || hex(BLAKE2b-256(kemPK || dsaPK))")
		}
		if err := id.Validate(); err != nil {
			t.Errorf("Validate: %v", err)
		}
		// The backup seed reproduces the identity.
		seed, ok := id.Seed()
		if !ok {
			t.Fatal("GenerateIdentity did not keep its seed")
		}
		again := idtMust(t, seed)
		if again.SessionID != id.SessionID || !bytes.Equal(again.KEMSecretKey, id.KEMSecretKey) || !bytes.Equal(again.DSASecretKey, id.DSASecretKey) {
			t.Error("IdentityFromSeed(Seed()) does not reproduce the identity")
		}
	}
	if a.SessionID == b.SessionID || bytes.Equal(a.KEMSecretKey, b.KEMSecretKey) || bytes.Equal(a.DSASecretKey, b.DSASecretKey) {
		t.Error("two generated identities share keys")
	}
	sa, _ := a.Seed()
	sb, _ := b.Seed()
	if sa == sb {
		t.Error("two generated identities share a seed")
	}
}

// IdentityFromSeed known answer for the master seed 00 01 02 ... 1f
// (documented in LLM.md). A change in the derivation, the labels or the key
// generation changes these values.
const (
	idtKATSessionID = "076902757b91d44d57b0a3cabd1fdd9c752712d5781f05d1b4b7d9c0cff019708e"
	// d || z and ξ derived from the master seed.
	idtKATKEMSeed = "803ba34b8750276b60ba531cdc22ccbe9469ece9fa540536d7d9d16372fdc8ba" +
		"ceec1c76a3184a3d2b20b2988f78f16b11d75a2862150a136843957ae19b75cb"
	idtKATDSASeed = "903eddc76c5828460b9ca776e0cfa354ea2dde80c53ddf738c7aefbc2fd27002"
	// SHA-256 of the four keys (public and expanded secret encodings).
	idtKATKEMPublicSHA256 = "eb93e59ed962ca2ec657e9e4944afaee00f1cd59c2febc2acfafcbb655032f48"
	idtKATDSAPublicSHA256 = "be14ee764143871f24c4028d89cb2d02dcb450e7ba6572d0c1373fad50e3ce7d"
	idtKATKEMSecretSHA256 = "fe0226fe9e5f98437bac242bda9b1e0592ea160285b3878cf2f7f9cf570045e7"
	idtKATDSASecretSHA256 = "945ce28f48cdc205387941b52a20a8a70e1c026849df597030139331da633a59"
)

func TestIdentityFromSeedKnownAnswer(t *testing.T) {
	seed := idtSeed(0)
	id := idtMust(t, seed)
	if id.SessionID != idtKATSessionID {
		t.Errorf("IdentityFromSeed(00..1f).SessionID = %s, want %s", id.SessionID, idtKATSessionID)
	}
	for _, c := range []struct {
		name, want string
		key        []byte
	}{
		{"kemPublicKey", idtKATKEMPublicSHA256, id.KEMPublicKey},
		{"dsaPublicKey", idtKATDSAPublicSHA256, id.DSAPublicKey},
		{"kemSecretKey", idtKATKEMSecretSHA256, id.KEMSecretKey},
		{"dsaSecretKey", idtKATDSASecretSHA256, id.DSASecretKey},
	} {
		if h := sha256.Sum256(c.key); hex.EncodeToString(h[:]) != c.want {
			t.Errorf("SHA-256(%s) = %x, want %s", c.name, h, c.want)
		}
	}

	// The documented derivation, recomputed with x/crypto's BLAKE2b.
	hk, _ := blake2b.New512(seed[:])
	hk.Write([]byte("luxfi/session/v1/identity/ml-kem-768"))
	dz := hk.Sum(nil)
	hd, _ := blake2b.New256(seed[:])
	hd.Write([]byte("luxfi/session/v1/identity/ml-dsa-65"))
	xi := hd.Sum(nil)
	if hex.EncodeToString(dz) != idtKATKEMSeed || hex.EncodeToString(xi) != idtKATDSASeed {
		t.Fatalf("derived seeds d||z = %x, ξ = %x", dz, xi)
	}
	fromSeeds, err := NewIdentity(dz, xi)
	if err != nil {
		t.Fatal(err)
	}
	if fromSeeds.SessionID != id.SessionID || !bytes.Equal(fromSeeds.KEMSecretKey, id.KEMSecretKey) || !bytes.Equal(fromSeeds.DSASecretKey, id.DSASecretKey) {
		t.Error("IdentityFromSeed is not NewIdentity(BLAKE2b-512(seed, kem label), BLAKE2b-256(seed, dsa label))")
	}
	if s, ok := id.Seed(); !ok || s != seed {
		t.Error("Seed() does not return the master seed")
	}
}

func TestIdentityFromSeedDeterminismAndSeparation(t *testing.T) {
	seed := idtSeed(0x40)
	a := idtMust(t, seed)
	b := idtMust(t, seed)
	if a.SessionID != b.SessionID || !bytes.Equal(a.KEMPublicKey, b.KEMPublicKey) || !bytes.Equal(a.KEMSecretKey, b.KEMSecretKey) ||
		!bytes.Equal(a.DSAPublicKey, b.DSAPublicKey) || !bytes.Equal(a.DSASecretKey, b.DSASecretKey) {
		t.Fatal("IdentityFromSeed is not deterministic")
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatal("JSON of two identities from one seed differs")
	}

	// Every bit of the seed matters (first, middle and last byte).
	seen := map[string]bool{a.SessionID: true}
	for _, i := range []int{0, 15, 31} {
		for bit := 0; bit < 8; bit += 7 {
			s := seed
			s[i] ^= 1 << bit
			c := idtMust(t, s)
			if seen[c.SessionID] {
				t.Errorf("flipping bit %d of byte %d gives a repeated identity", bit, i)
			}
			seen[c.SessionID] = true
			if bytes.Equal(c.KEMPublicKey, a.KEMPublicKey) || bytes.Equal(c.DSAPublicKey, a.DSAPublicKey) {
				t.Errorf("flipping bit %d of byte %d leaves a key unchanged", bit, i)
			}
		}
	}

	// Domain separation: neither key is made from the master seed itself,
	// nor from the other key's seed.
	kemSeed := keyedBLAKE2b(blake2b.Size, seed[:], seedLabelKEM)
	dsaSeed := keyedBLAKE2b(blake2b.Size256, seed[:], seedLabelDSA)
	if seedLabelKEM == seedLabelDSA || bytes.Equal(kemSeed[:32], dsaSeed) || bytes.Equal(kemSeed[32:], dsaSeed) {
		t.Error("the ML-KEM and ML-DSA seeds are not separated")
	}
	raw, err := ParseDSASecretKey(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(raw.Public().Bytes(), a.DSAPublicKey) {
		t.Error("the ML-DSA key is ML-DSA.KeyGen(master seed) without domain separation")
	}
	rawKEM, err := ParseKEMSecretKey(append(seed[:], seed[:]...))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(rawKEM.Public().Bytes(), a.KEMPublicKey) {
		t.Error("the ML-KEM key is KeyGen(seed, seed) without domain separation")
	}
	// The ML-DSA seed is not a prefix of the ML-KEM one (as it would be with
	// a single unlabelled XOF stream).
	unkeyed := blake2b.Sum512(seed[:])
	if bytes.Equal(unkeyed[:], kemSeed) {
		t.Error("the ML-KEM seed is an unkeyed hash of the master seed")
	}
}

// idtSecretEncodings lists encodings of an identity's secrets that must not
// appear in any public or formatted output.
func idtSecretEncodings(id *Identity) []string {
	// Chunks of the parts that are secret only: the expanded ML-KEM key
	// embeds ek and H(ek) at [1152,2368), and the expanded ML-DSA key starts
	// with ρ and tr, which the public key determines.
	var chunks [][]byte
	if k := id.KEMSecretKey; len(k) == KEMSecretKeySize {
		chunks = append(chunks, k[0:12], k[600:612], k[2370:2382])
	}
	if k := id.DSASecretKey; len(k) == DSASecretKeySize {
		chunks = append(chunks, k[32:44], k[200:212], k[1000:1012], k[3000:3012])
	}
	if seed, ok := id.Seed(); ok {
		chunks = append(chunks, bytes.Clone(seed[0:12]), bytes.Clone(seed[18:30]))
	}
	var out []string
	for _, c := range chunks {
		// Every encoding a formatter or encoder might use.
		out = append(out, hex.EncodeToString(c), strings.ToUpper(hex.EncodeToString(c)),
			base64.StdEncoding.EncodeToString(c), base64.URLEncoding.EncodeToString(c),
			strings.Trim(fmt.Sprint(c), "[]"),
			strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", c), "[]byte{"), "}"))
	}
	return out
}

func idtCheckNoSecrets(t *testing.T, what, s string, secrets []string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains secret key material (%q...)", what, sec[:min(len(sec), 12)])
			return
		}
	}
}

func TestPublicIdentityHasNoSecrets(t *testing.T) {
	id := idtMust(t, idtSeed(0x60))
	secrets := idtSecretEncodings(id)
	if len(secrets) == 0 {
		t.Fatal("no secrets to look for")
	}
	origKEM, origDSA := bytes.Clone(id.KEMSecretKey), bytes.Clone(id.DSASecretKey)

	pub := id.PublicIdentity()
	if pub.KEMSecretKey != nil || pub.DSASecretKey != nil {
		t.Fatal("PublicIdentity kept secret keys")
	}
	if _, ok := pub.Seed(); ok {
		t.Fatal("PublicIdentity kept the master seed")
	}
	if pub.SessionID != id.SessionID || !bytes.Equal(pub.KEMPublicKey, id.KEMPublicKey) || !bytes.Equal(pub.DSAPublicKey, id.DSAPublicKey) {
		t.Fatal("PublicIdentity changed the public part")
	}
	if !bytes.Equal(id.KEMSecretKey, origKEM) || !bytes.Equal(id.DSASecretKey, origDSA) {
		t.Fatal("PublicIdentity modified the original")
	}
	// The public copy does not alias the original's slices.
	pub.KEMPublicKey[0] ^= 1
	if pub.KEMPublicKey[0] == id.KEMPublicKey[0] {
		t.Error("PublicIdentity shares the KEM public key slice with the original")
	}
	pub.KEMPublicKey[0] ^= 1
	if err := pub.Validate(); err != nil {
		t.Errorf("Validate(public): %v", err)
	}

	js, err := json.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(js, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kemSecretKey", "dsaSecretKey", "KEMSecretKey", "DSASecretKey", "seed"} {
		if _, ok := fields[k]; ok {
			t.Errorf("public JSON has field %q", k)
		}
	}
	for _, k := range []string{"sessionId", "kemPublicKey", "dsaPublicKey"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("public JSON lacks field %q", k)
		}
	}
	idtCheckNoSecrets(t, "public JSON", string(js), secrets)
	js2, _ := json.Marshal(*pub)
	idtCheckNoSecrets(t, "public JSON (value)", string(js2), secrets)
	// The full JSON does carry the secrets (the documented format); this
	// also checks that idtSecretEncodings finds what it looks for.
	full, _ := json.Marshal(id)
	found := 0
	for _, sec := range secrets {
		if strings.Contains(string(full), sec) {
			found++
		}
	}
	if !strings.Contains(string(full), "kemSecretKey") || found == 0 {
		t.Error("full JSON lacks the secret keys, or the secret detector misses them")
	}
	// The same detector finds secrets in the unguarded %v of the raw fields.
	raw := fmt.Sprintf("%v %v", id.KEMSecretKey, id.DSASecretKey)
	found = 0
	for _, sec := range secrets {
		if strings.Contains(raw, sec) {
			found++
		}
	}
	if found == 0 {
		t.Error("the secret detector misses the fmt form of the secret keys")
	}

	// The public identity can verify and be encrypted to, but not sign or
	// decrypt.
	if _, err := pub.Sign([]byte("m")); !errors.Is(err, ErrInvalidSecretKey) {
		t.Errorf("public Sign: %v", err)
	}
	env, err := id.EncryptTo(pub, []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.DecryptFrom(env); !errors.Is(err, ErrInvalidSecretKey) {
		t.Errorf("public DecryptFrom: %v", err)
	}
	if pt, err := id.DecryptFrom(env); err != nil || string(pt) != "m" {
		t.Errorf("DecryptFrom: %v", err)
	}
}

func TestIdentityFormattingHidesSecrets(t *testing.T) {
	id := idtMust(t, idtSeed(0x70))
	secrets := idtSecretEncodings(id)
	want := "Identity(" + id.SessionID + ")"
	if id.String() != want || id.GoString() != want {
		t.Errorf("String = %q, GoString = %q, want %q", id.String(), id.GoString(), want)
	}
	type wrapper struct {
		Name string
		ID   *Identity
		Val  Identity
	}
	operands := map[string]any{
		"*Identity":        id,
		"Identity":         *id,
		"[]*Identity":      []*Identity{id},
		"[]Identity":       []Identity{*id},
		"map":              map[string]*Identity{"k": id},
		"struct":           wrapper{"w", id, *id},
		"*struct":          &wrapper{"w", id, *id},
		"embedded":         struct{ *Identity }{id},
		"error wrapping":   fmt.Errorf("cannot use %v: %w", id, ErrInvalidSecretKey),
		"*Identity(empty)": &Identity{SessionID: id.SessionID},
	}
	for name, op := range operands {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
			s := fmt.Sprintf(verb, op)
			idtCheckNoSecrets(t, fmt.Sprintf("Sprintf(%s, %s)", verb, name), s, secrets)
			if name == "*Identity" || name == "Identity" {
				if verb == "%v" || verb == "%+v" || verb == "%#v" || verb == "%s" {
					if s != want {
						t.Errorf("Sprintf(%s, %s) = %q, want %q", verb, name, s, want)
					}
				}
			}
		}
		idtCheckNoSecrets(t, "Sprint("+name+")", fmt.Sprint(op), secrets)
		idtCheckNoSecrets(t, "Sprintln("+name+")", fmt.Sprintln(op), secrets)
	}
	var nilID *Identity
	if s := fmt.Sprint(nilID); s != "<nil>" {
		t.Errorf("Sprint(nil *Identity) = %q", s)
	}

	// The standard logger.
	var buf bytes.Buffer
	l := log.New(&buf, "", 0)
	l.Printf("identity %v %+v %#v", id, *id, id)
	l.Println(id, *id)
	idtCheckNoSecrets(t, "log output", buf.String(), secrets)
	if !strings.Contains(buf.String(), id.SessionID) {
		t.Error("log output lacks the Session ID")
	}
}

// TestIdentityFormatAnyVerbHidesSecrets formats an identity with the verbs
// that are not string verbs, for which fmt does not call String: without a
// Format method, %d prints every byte of the secret keys in decimal.
func TestIdentityFormatAnyVerbHidesSecrets(t *testing.T) {
	id := idtMust(t, idtSeed(0x74))
	secrets := idtSecretEncodings(id)
	for _, verb := range []string{"%d", "%o", "%b", "%c", "%U", "%t", "%10.3v"} {
		for name, op := range map[string]any{"*Identity": id, "Identity": *id} {
			idtCheckNoSecrets(t, fmt.Sprintf("Sprintf(%s, %s)", verb, name), fmt.Sprintf(verb, op), secrets)
		}
	}
}

// TestIdentitySlogHidesSecrets logs an identity through log/slog. The text
// handler formats it with fmt; the JSON handler marshals it as JSON, which
// for a full identity includes the secret keys unless Identity implements
// slog.LogValuer.
func TestIdentitySlogHidesSecrets(t *testing.T) {
	id := idtMust(t, idtSeed(0x78))
	secrets := idtSecretEncodings(id)
	for name, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		for opName, op := range map[string]any{"*Identity": id, "Identity": *id} {
			var buf bytes.Buffer
			slog.New(newHandler(&buf)).Info("loaded", "identity", op)
			idtCheckNoSecrets(t, fmt.Sprintf("slog %s handler with %s", name, opName), buf.String(), secrets)
			if !strings.Contains(buf.String(), id.SessionID) {
				t.Errorf("slog %s handler output lacks the Session ID", name)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	a := idtMust(t, idtSeed(0x80))
	b := idtMust(t, idtSeed(0x81))
	secrets := append(idtSecretEncodings(a), idtSecretEncodings(b)...)
	clone := func(id *Identity) *Identity {
		return &Identity{
			SessionID: id.SessionID, KEMPublicKey: bytes.Clone(id.KEMPublicKey), KEMSecretKey: bytes.Clone(id.KEMSecretKey),
			DSAPublicKey: bytes.Clone(id.DSAPublicKey), DSASecretKey: bytes.Clone(id.DSASecretKey),
		}
	}
	for _, c := range []struct {
		name string
		mod  func(id *Identity)
		want error
	}{
		{"valid", func(id *Identity) {}, nil},
		{"validPublic", func(id *Identity) { id.KEMSecretKey, id.DSASecretKey = nil, nil }, nil},
		{"seedFormSecrets", func(id *Identity) {
			seed := idtSeed(0x80)
			id.KEMSecretKey = keyedBLAKE2b(blake2b.Size, seed[:], seedLabelKEM)
			id.DSASecretKey = keyedBLAKE2b(blake2b.Size256, seed[:], seedLabelDSA)
		}, nil},
		{"otherKEMSecret", func(id *Identity) { id.KEMSecretKey = bytes.Clone(b.KEMSecretKey) }, ErrInvalidSecretKey},
		{"otherDSASecret", func(id *Identity) { id.DSASecretKey = bytes.Clone(b.DSASecretKey) }, ErrInvalidSecretKey},
		{"otherKEMPublic", func(id *Identity) { id.KEMPublicKey = bytes.Clone(b.KEMPublicKey) }, ErrInvalidSessionID},
		{"otherKEMPublicAndID", func(id *Identity) {
			id.KEMPublicKey = bytes.Clone(b.KEMPublicKey)
			id.SessionID, _ = DeriveSessionID(id.KEMPublicKey, id.DSAPublicKey)
		}, ErrInvalidSecretKey},
		{"otherDSAPublicAndID", func(id *Identity) {
			id.DSAPublicKey = bytes.Clone(b.DSAPublicKey)
			id.SessionID, _ = DeriveSessionID(id.KEMPublicKey, id.DSAPublicKey)
		}, ErrInvalidSecretKey},
		{"otherSessionID", func(id *Identity) { id.SessionID = b.SessionID }, ErrInvalidSessionID},
		{"legacyPrefix", func(id *Identity) { id.SessionID = PrefixLegacy + id.SessionID[2:] }, ErrInvalidSessionID},
		{"emptySessionID", func(id *Identity) { id.SessionID = "" }, ErrInvalidSessionID},
		{"upperSessionID", func(id *Identity) { id.SessionID = strings.ToUpper(id.SessionID) }, ErrInvalidSessionID},
		{"shortKEMPublic", func(id *Identity) { id.KEMPublicKey = id.KEMPublicKey[:100] }, ErrInvalidPublicKey},
		{"shortDSAPublic", func(id *Identity) { id.DSAPublicKey = id.DSAPublicKey[:100] }, ErrInvalidPublicKey},
		{"shortKEMSecret", func(id *Identity) { id.KEMSecretKey = id.KEMSecretKey[:100] }, ErrInvalidSecretKey},
		{"shortDSASecret", func(id *Identity) { id.DSASecretKey = id.DSASecretKey[:100] }, ErrInvalidSecretKey},
		{"emptyKEMSecret", func(id *Identity) { id.KEMSecretKey = []byte{} }, ErrInvalidSecretKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A shallow copy of a keeps its parsed keys; a clone has none.
			parsed := *a
			for _, id := range []*Identity{&parsed, clone(a)} {
				c.mod(id)
				err := id.Validate()
				if c.want == nil {
					if err != nil {
						t.Fatalf("Validate: %v", err)
					}
					continue
				}
				if !errors.Is(err, c.want) {
					t.Fatalf("Validate: %v, want %v", err, c.want)
				}
				negCheckErr(t, "Validate", err, c.want, secrets)
			}
		})
	}
}

// TestValidateCatchesInconsistentSecretKeys corrupts the parts of the
// expanded secret keys that no public-key comparison covers: ŝ of the
// ML-KEM key (the embedded ek and its hash stay intact) and tr of the ML-DSA
// key (t1 recomputed from ρ, s1 and s2 still matches). Either makes the
// identity unusable (it cannot decrypt, or every signature is invalid), so
// Validate must reject it; a pairwise-consistency check (encapsulate and
// decapsulate, sign and verify) catches both.
func TestValidateCatchesInconsistentSecretKeys(t *testing.T) {
	a := idtMust(t, idtSeed(0x88))
	msg := []byte("consistency")
	for _, c := range []struct {
		name string
		kem  bool
		off  int
	}{
		{"kem-s-hat", true, 10},
		{"kem-s-hat-end", true, 1151},
		{"dsa-tr", false, 70},
		{"dsa-tr-end", false, 127},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := &Identity{SessionID: a.SessionID, KEMPublicKey: a.KEMPublicKey, DSAPublicKey: a.DSAPublicKey,
				KEMSecretKey: bytes.Clone(a.KEMSecretKey), DSASecretKey: bytes.Clone(a.DSASecretKey)}
			if c.kem {
				id.KEMSecretKey[c.off] ^= 1
			} else {
				id.DSASecretKey[c.off] ^= 1
			}
			// The corrupted key parses, and is indeed unusable.
			if c.kem {
				env, err := a.EncryptTo(a, msg)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := id.DecryptFrom(env); err == nil {
					t.Fatal("corrupted ML-KEM key still decrypts; the test does not test anything")
				}
			} else {
				sig, err := id.Sign(msg)
				if err != nil {
					t.Fatal(err)
				}
				if a.Verify(msg, sig) {
					t.Fatal("corrupted ML-DSA key still signs validly; the test does not test anything")
				}
			}
			if err := id.Validate(); !errors.Is(err, ErrInvalidSecretKey) {
				t.Errorf("Validate of an identity whose secret key does not work with its public key: %v, want ErrInvalidSecretKey", err)
			}
			// NewIdentity derives the public keys from the secret keys, so
			// it may accept them, but the identity must not pass Validate.
			if nid, err := NewIdentity(id.KEMSecretKey, id.DSASecretKey); err == nil {
				if err := nid.Validate(); !errors.Is(err, ErrInvalidSecretKey) {
					t.Errorf("Validate of NewIdentity(corrupted keys): %v, want ErrInvalidSecretKey", err)
				}
			}
		})
	}
}

// TestIdentityStaleParse reassigns key fields of an identity that has parsed
// its keys and checks that every operation uses the new keys.
func TestIdentityStaleParse(t *testing.T) {
	a := idtMust(t, idtSeed(0x90))
	b := idtMust(t, idtSeed(0x91))
	msg := []byte("stale-parse check")

	// Warm a's parsed keys.
	if _, err := a.Sign(msg); err != nil {
		t.Fatal(err)
	}

	id := idtMust(t, idtSeed(0x90))
	id.DSASecretKey = bytes.Clone(b.DSASecretKey)
	sig, err := id.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Verify(msg, sig) || a.Verify(msg, sig) {
		t.Error("Sign after reassigning DSASecretKey used the old key")
	}
	if err := id.Validate(); !errors.Is(err, ErrInvalidSecretKey) {
		t.Errorf("Validate after reassigning DSASecretKey: %v", err)
	}

	id = idtMust(t, idtSeed(0x90))
	id.DSAPublicKey = bytes.Clone(b.DSAPublicKey)
	bsig, _ := b.Sign(msg)
	asig, _ := a.Sign(msg)
	if !id.Verify(msg, bsig) || id.Verify(msg, asig) {
		t.Error("Verify after reassigning DSAPublicKey used the old key")
	}
	signed, _ := b.SignMessage(msg)
	if m, err := id.VerifySignedMessage(signed); err != nil || !bytes.Equal(m, msg) {
		t.Errorf("VerifyMessage after reassigning DSAPublicKey: %v", err)
	}
	if pub := id.PublicIdentity(); !pub.Verify(msg, bsig) || pub.Verify(msg, asig) {
		t.Error("PublicIdentity after reassigning DSAPublicKey kept the old key")
	}

	id = idtMust(t, idtSeed(0x90))
	id.KEMSecretKey = bytes.Clone(b.KEMSecretKey)
	env, err := b.EncryptTo(b, msg)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := id.DecryptFrom(env); err != nil || !bytes.Equal(pt, msg) {
		t.Errorf("DecryptFrom after reassigning KEMSecretKey used the old key: %v", err)
	}

	id = idtMust(t, idtSeed(0x90))
	id.KEMPublicKey = bytes.Clone(b.KEMPublicKey)
	env, err = a.EncryptTo(id, msg)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := b.DecryptFrom(env); err != nil || !bytes.Equal(pt, msg) {
		t.Errorf("EncryptTo after reassigning KEMPublicKey used the old key: %v", err)
	}
	if _, err := a.DecryptFrom(env); err == nil {
		t.Error("the old key opens an envelope made after reassigning KEMPublicKey")
	}
	if pub := id.PublicIdentity(); !bytes.Equal(pub.KEMPublicKey, b.KEMPublicKey) {
		t.Error("PublicIdentity after reassigning KEMPublicKey kept the old key")
	}

	// Reassigning to an equal copy (a different slice with the same bytes)
	// keeps working.
	id = idtMust(t, idtSeed(0x90))
	id.KEMSecretKey = bytes.Clone(id.KEMSecretKey)
	id.DSASecretKey = bytes.Clone(id.DSASecretKey)
	if err := id.Validate(); err != nil {
		t.Errorf("Validate after reassigning equal copies: %v", err)
	}
}

func TestIdentityJSONRoundTrip(t *testing.T) {
	a := idtMust(t, idtSeed(0xa0))
	js, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var dec Identity
	if err := json.Unmarshal(js, &dec); err != nil {
		t.Fatal(err)
	}
	if err := dec.Validate(); err != nil {
		t.Fatalf("Validate of decoded identity: %v", err)
	}
	if dec.SessionID != a.SessionID || !bytes.Equal(dec.KEMSecretKey, a.KEMSecretKey) || !bytes.Equal(dec.DSASecretKey, a.DSASecretKey) {
		t.Fatal("JSON round trip changed the identity")
	}
	// The decoded identity (no parsed keys) works like the original.
	sig, err := dec.Sign([]byte("x"))
	if err != nil || !a.Verify([]byte("x"), sig) {
		t.Fatalf("decoded identity Sign: %v", err)
	}
	env, err := a.EncryptTo(&dec, []byte("y"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := dec.DecryptFrom(env); err != nil || string(pt) != "y" {
		t.Fatalf("decoded identity DecryptFrom: %v", err)
	}
}

func TestEncryptToDecryptFrom(t *testing.T) {
	alice := idtMust(t, idtSeed(0xb0))
	bob := idtMust(t, idtSeed(0xb1))
	for _, n := range []int{0, 1, 100, 4096, 70000} {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		env, err := alice.EncryptTo(bob.PublicIdentity(), pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(env) != n+RecipientOverhead {
			t.Errorf("%d-byte plaintext: envelope %d bytes, want %d", n, len(env), n+RecipientOverhead)
		}
		got, err := bob.DecryptFrom(env)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%d-byte plaintext: DecryptFrom: %v", n, err)
		}
		got, err = DecryptFromSender(bob.KEMSecretKey, env)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%d-byte plaintext: DecryptFromSender: %v", n, err)
		}
		if _, err := alice.DecryptFrom(env); !errors.Is(err, ErrDecryptionFailed) {
			t.Errorf("%d-byte plaintext: the sender opened the envelope: %v", n, err)
		}
		// A second envelope of the same plaintext is unrelated.
		env2, _ := EncryptToRecipient(bob.KEMPublicKey, pt)
		if bytes.Equal(env[:KEMCiphertextSize], env2[:KEMCiphertextSize]) || bytes.Equal(env[KEMCiphertextSize:KEMCiphertextSize+NonceSize], env2[KEMCiphertextSize:KEMCiphertextSize+NonceSize]) {
			t.Error("two envelopes share a KEM ciphertext or nonce")
		}
	}
	// Encapsulate / Decapsulate directly.
	ct, ss, err := Encapsulate(bob.KEMPublicKey)
	if err != nil || len(ct) != KEMCiphertextSize || len(ss) != KEMSharedSecretSize {
		t.Fatalf("Encapsulate: %d, %d, %v", len(ct), len(ss), err)
	}
	if got, err := Decapsulate(bob.KEMSecretKey, ct); err != nil || !bytes.Equal(got, ss) {
		t.Fatalf("Decapsulate: %v", err)
	}
	if got, _ := Decapsulate(alice.KEMSecretKey, ct); bytes.Equal(got, ss) {
		t.Fatal("another key decapsulates to the same secret")
	}
}

func TestSignVerifyContext(t *testing.T) {
	id := idtMust(t, idtSeed(0xc0))
	other := idtMust(t, idtSeed(0xc1))
	msg := []byte("context test")
	ctx := []byte("luxfi/session/test")
	var circlPK mldsa65.PublicKey
	if err := circlPK.UnmarshalBinary(id.DSAPublicKey); err != nil {
		t.Fatal(err)
	}

	plain, err := id.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	plain2, err := Sign(id.DSASecretKey, msg)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(plain, plain2) {
		t.Error("signing is not hedged: two signatures are equal")
	}
	withCtx, err := id.SignContext(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	withCtx2, err := SignContext(id.DSASecretKey, ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		sig  []byte
		ctx  []byte
		want bool
	}{
		{"plain/nil", plain, nil, true},
		{"plain/empty", plain2, []byte{}, true},
		{"plain/ctx", plain, ctx, false},
		{"ctx/ctx", withCtx, ctx, true},
		{"ctx2/ctx", withCtx2, ctx, true},
		{"ctx/nil", withCtx, nil, false},
		{"ctx/other", withCtx, []byte("luxfi/session/tesu"), false},
		{"ctx/prefix", withCtx, ctx[:len(ctx)-1], false},
	} {
		if got := VerifyContext(id.DSAPublicKey, c.ctx, msg, c.sig); got != c.want {
			t.Errorf("%s: VerifyContext = %v, want %v", c.name, got, c.want)
		}
		if got := id.VerifyContext(c.ctx, msg, c.sig); got != c.want {
			t.Errorf("%s: Identity.VerifyContext = %v, want %v", c.name, got, c.want)
		}
		if got := mldsa65.Verify(&circlPK, msg, c.ctx, c.sig); got != c.want {
			t.Errorf("%s: circl Verify = %v, want %v", c.name, got, c.want)
		}
		if got := other.VerifyContext(c.ctx, msg, c.sig); got {
			t.Errorf("%s: verifies under another identity", c.name)
		}
		if len(c.ctx) == 0 {
			if got := Verify(id.DSAPublicKey, msg, c.sig); got != c.want {
				t.Errorf("%s: Verify = %v, want %v", c.name, got, c.want)
			}
			if got := id.Verify(msg, c.sig); got != c.want {
				t.Errorf("%s: Identity.Verify = %v, want %v", c.name, got, c.want)
			}
		}
	}
	// SignMessage / VerifyMessage use the empty context.
	signed, err := id.SignMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !Verify(id.DSAPublicKey, msg, signed[:SignatureSize]) || !bytes.Equal(signed[SignatureSize:], msg) {
		t.Error("SignMessage is not Sign(msg) || msg")
	}
	if m, err := id.PublicIdentity().VerifySignedMessage(signed); err != nil || !bytes.Equal(m, msg) {
		t.Errorf("VerifyMessage: %v", err)
	}
	// The returned message does not alias the input.
	m, _ := id.VerifySignedMessage(signed)
	m[0] ^= 1
	if signed[SignatureSize] != msg[0] {
		t.Error("VerifyMessage returned a slice of its input")
	}
}

// TestConcurrentUse runs the byte-slice functions, identities and
// ResetKeyCache from many goroutines at once; run it with -race. More
// secret keys are used than the secret-key cache holds, so eviction runs
// concurrently with lookups too.
func TestConcurrentUse(t *testing.T) {
	const nIDs = secretKeyCacheSize + 4
	ids := make([]*Identity, nIDs)
	for i := range ids {
		ids[i] = idtMust(t, idtSeed(byte(0xd0+i)))
	}
	// Hand-built copies without parsed keys go through the cache, and the
	// expanded DSA key computes its public key lazily.
	handBuilt := make([]*Identity, nIDs)
	for i, id := range ids {
		handBuilt[i] = &Identity{SessionID: id.SessionID, KEMPublicKey: id.KEMPublicKey, KEMSecretKey: id.KEMSecretKey,
			DSAPublicKey: id.DSAPublicKey, DSASecretKey: id.DSASecretKey}
	}
	shared, err := ParseDSASecretKey(ids[0].DSASecretKey)
	if err != nil {
		t.Fatal(err)
	}
	ResetKeyCache()

	const workers, rounds = 8, 6
	var wg sync.WaitGroup
	errc := make(chan error, workers*rounds*4)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				i := (w*rounds + r) % nIDs
				id := ids[i]
				msg := []byte(fmt.Sprintf("worker %d round %d", w, r))
				switch (w + r) % 4 {
				case 0:
					sig, err := Sign(id.DSASecretKey, msg)
					if err != nil || !Verify(id.DSAPublicKey, msg, sig) {
						errc <- fmt.Errorf("Sign/Verify %d: %v", i, err)
					}
				case 1:
					ct, ss, err := Encapsulate(id.KEMPublicKey)
					if err != nil {
						errc <- err
						break
					}
					if got, err := Decapsulate(id.KEMSecretKey, ct); err != nil || !bytes.Equal(got, ss) {
						errc <- fmt.Errorf("Encapsulate/Decapsulate %d: %v", i, err)
					}
				case 2:
					env, err := ids[(i+1)%nIDs].EncryptTo(handBuilt[i], msg)
					if err != nil {
						errc <- err
						break
					}
					if pt, err := handBuilt[i].DecryptFrom(env); err != nil || !bytes.Equal(pt, msg) {
						errc <- fmt.Errorf("EncryptTo/DecryptFrom %d: %v", i, err)
					}
					if pt, err := DecryptFromSender(id.KEMSecretKey, env); err != nil || !bytes.Equal(pt, msg) {
						errc <- fmt.Errorf("DecryptFromSender %d: %v", i, err)
					}
				case 3:
					signed, err := handBuilt[i].SignMessage(msg)
					if err != nil {
						errc <- err
						break
					}
					if m, err := id.PublicIdentity().VerifySignedMessage(signed); err != nil || !bytes.Equal(m, msg) {
						errc <- fmt.Errorf("SignMessage/VerifyMessage %d: %v", i, err)
					}
					if !bytes.Equal(shared.Public().Bytes(), ids[0].DSAPublicKey) {
						errc <- errors.New("lazy DSA public key differs")
					}
				}
				if r%2 == 1 && w%3 == 0 {
					ResetKeyCache()
				}
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}

	// The caches stay within their bounds and ResetKeyCache empties them.
	for i := range ids {
		if _, err := Decapsulate(ids[i].KEMSecretKey, make([]byte, KEMCiphertextSize)); err != nil {
			t.Fatal(err)
		}
		if _, err := Sign(ids[i].DSASecretKey, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := kemSecretCache.len(); n > secretKeyCacheSize || n == 0 {
		t.Errorf("KEM secret-key cache holds %d keys, bound %d", n, secretKeyCacheSize)
	}
	if n := dsaSecretCache.len(); n > secretKeyCacheSize || n == 0 {
		t.Errorf("DSA secret-key cache holds %d keys, bound %d", n, secretKeyCacheSize)
	}
	ResetKeyCache()
	if kemSecretCache.len()+dsaSecretCache.len()+kemPublicCache.len()+dsaPublicCache.len() != 0 {
		t.Error("ResetKeyCache left keys in a cache")
	}
	// The byte-slice functions still work after a reset.
	sig, err := Sign(ids[0].DSASecretKey, []byte("after reset"))
	if err != nil || !Verify(ids[0].DSAPublicKey, []byte("after reset"), sig) {
		t.Errorf("Sign after ResetKeyCache: %v", err)
	}
}
