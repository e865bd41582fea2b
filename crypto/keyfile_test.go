package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/scrypt"

	"github.com/luxfi/session/internal/fuzzedit"
)

// fastKDF lowers the scrypt work factor for the duration of a test.
func fastKDF(t testing.TB) {
	old := scryptLogN.Swap(minScryptLogN)
	t.Cleanup(func() { scryptLogN.Store(old) })
}

func TestSaveLoadIdentity(t *testing.T) {
	fastKDF(t)
	dir := t.TempDir()
	seeded := testIdentities(t, 1)[0]
	fromKeys, err := NewIdentity(seeded.KEMSecretKey, seeded.DSASecretKey) // no master seed
	if err != nil {
		t.Fatal(err)
	}
	for name, id := range map[string]*Identity{"seed": seeded, "keys": fromKeys} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".json")
			if err := id.Save(path, "correct horse"); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v, want 0600", st.Mode().Perm())
			}
			data, _ := os.ReadFile(path)
			// Regions that are secret: ML-KEM dk_PKE and z, ML-DSA K and s1
			// (the expanded keys also embed public values such as ρ and ek).
			for _, secret := range [][]byte{id.KEMSecretKey[:64], id.KEMSecretKey[2368:], id.DSASecretKey[32:64], id.DSASecretKey[128:192]} {
				if bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(secret)[:40])) ||
					bytes.Contains(data, []byte(hex.EncodeToString(secret)[:40])) {
					t.Fatal("identity file contains secret key material in the clear")
				}
			}
			got, err := LoadIdentity(path, "correct horse")
			if err != nil {
				t.Fatal(err)
			}
			if got.SessionID != id.SessionID || !bytes.Equal(got.KEMSecretKey, id.KEMSecretKey) || !bytes.Equal(got.DSASecretKey, id.DSASecretKey) {
				t.Fatal("loaded identity differs")
			}
			_, hadSeed := id.Seed()
			_, hasSeed := got.Seed()
			if hadSeed != hasSeed {
				t.Fatalf("seed kept: %v, want %v", hasSeed, hadSeed)
			}
			// The loaded identity works.
			sig, err := got.Sign([]byte("m"))
			if err != nil || !id.Verify([]byte("m"), sig) {
				t.Fatal("loaded identity cannot sign")
			}
			if _, err := LoadIdentity(path, "wrong horse"); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("wrong passphrase: got %v", err)
			}
		})
	}
	// Saving again replaces the file atomically and leaves no temp files.
	path := filepath.Join(dir, "seed.json")
	if err := seeded.Save(path, "second"); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(path, "second"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestLoadPublicIdentity(t *testing.T) {
	fastKDF(t)
	id := testIdentities(t, 2)[0]
	path := filepath.Join(t.TempDir(), "id.json")
	if err := id.Save(path, "pw"); err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if pub.SessionID != id.SessionID || pub.KEMSecretKey != nil || pub.DSASecretKey != nil {
		t.Fatal("LoadPublicIdentity: wrong or secret-bearing identity")
	}
	// A file whose clear Session ID was changed is refused.
	data, _ := os.ReadFile(path)
	var m map[string]any
	json.Unmarshal(data, &m)
	m["sessionId"] = testIdentities(t, 2)[1].SessionID
	bad, _ := json.Marshal(m)
	os.WriteFile(path, bad, 0o600)
	if _, err := LoadPublicIdentity(path); !errors.Is(err, ErrInvalidIdentityFile) {
		t.Fatalf("tampered Session ID: %v", err)
	}
}

func TestSaveRefuses(t *testing.T) {
	fastKDF(t)
	id := testIdentities(t, 1)[0]
	path := filepath.Join(t.TempDir(), "id.json")
	if err := id.Save(path, ""); !errors.Is(err, ErrEmptyPassphrase) {
		t.Fatalf("empty passphrase: %v", err)
	}
	if err := id.PublicIdentity().Save(path, "p"); !errors.Is(err, ErrInvalidSecretKey) {
		t.Fatalf("public identity: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("a refused Save wrote a file")
	}
	if err := id.Save(filepath.Join(t.TempDir(), "missing", "id.json"), "p"); err == nil {
		t.Fatal("Save into a missing directory succeeded")
	}
}

// TestIdentityFileTampering changes each field of a saved file: every
// change is caught, as a wrong passphrase (authenticated fields) or an
// invalid file (fields checked before decryption).
func TestIdentityFileTampering(t *testing.T) {
	fastKDF(t)
	ids := testIdentities(t, 2)
	data, err := ids[0].marshalFile("pw")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	flip := func(s any) string {
		b, _ := base64.StdEncoding.DecodeString(s.(string))
		b[len(b)/2] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"not json", []byte("{"), ErrInvalidIdentityFile},
		{"empty", nil, ErrInvalidIdentityFile},
		{"trailing", append(bytes.Clone(data), []byte("{}")...), ErrInvalidIdentityFile},
		{"unknown field", edit(func(m map[string]any) { m["x"] = 1 }), ErrInvalidIdentityFile},
		{"version", edit(func(m map[string]any) { m["version"] = 2 }), ErrInvalidIdentityFile},
		{"kdf name", edit(func(m map[string]any) { m["kdf"].(map[string]any)["name"] = "argon2id" }), ErrInvalidIdentityFile},
		{"logN huge", edit(func(m map[string]any) { m["kdf"].(map[string]any)["logN"] = 40 }), ErrInvalidIdentityFile},
		{"memory huge", edit(func(m map[string]any) { m["kdf"].(map[string]any)["logN"] = 22; m["kdf"].(map[string]any)["r"] = 32 }), ErrInvalidIdentityFile},
		{"logN changed", edit(func(m map[string]any) { m["kdf"].(map[string]any)["logN"] = 11 }), ErrWrongPassphrase},
		{"salt", edit(func(m map[string]any) { k := m["kdf"].(map[string]any); k["salt"] = flip(k["salt"]) }), ErrWrongPassphrase},
		{"nonce", edit(func(m map[string]any) { m["nonce"] = flip(m["nonce"]) }), ErrWrongPassphrase},
		{"sealed", edit(func(m map[string]any) { m["sealed"] = flip(m["sealed"]) }), ErrWrongPassphrase},
		{"session id", edit(func(m map[string]any) { m["sessionId"] = ids[1].SessionID }), ErrWrongPassphrase},
		{"public key", edit(func(m map[string]any) { m["dsaPublicKey"] = base64.StdEncoding.EncodeToString(ids[1].DSAPublicKey) }), ErrWrongPassphrase},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseIdentityFile(c.in, "pw")
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if _, err := ParseIdentityFile(data, "pw"); err != nil {
		t.Fatalf("untouched file: %v", err)
	}
}

func TestLoadIdentityLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), MaxIdentityFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(big, "p"); !errors.Is(err, ErrInvalidIdentityFile) {
		t.Fatalf("oversize file: %v", err)
	}
	if _, err := LoadIdentity(filepath.Join(dir, "missing"), "p"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestPublicExport(t *testing.T) {
	id := testIdentities(t, 1)[0]
	data, err := id.ExportPublic()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("SecretKey")) || bytes.Contains(data, []byte("secret")) {
		t.Fatalf("public export mentions secrets: %s", data)
	}
	pub, err := ParsePublicIdentity(data)
	if err != nil {
		t.Fatal(err)
	}
	if pub.SessionID != id.SessionID || pub.KEMSecretKey != nil || pub.DSASecretKey != nil {
		t.Fatal("public identity round trip")
	}
	full, _ := json.Marshal(id)
	if _, err := ParsePublicIdentity(full); !errors.Is(err, ErrInvalidPublicKey) {
		t.Fatalf("full identity accepted as public: %v", err)
	}
	var m map[string]any
	json.Unmarshal(data, &m)
	m["sessionId"] = testIdentities(t, 2)[1].SessionID
	wrong, _ := json.Marshal(m)
	if _, err := ParsePublicIdentity(wrong); !errors.Is(err, ErrInvalidSessionID) {
		t.Fatalf("wrong Session ID accepted: %v", err)
	}
}

// FuzzParseIdentityFile edits real identity files (see fuzz_test.go for
// why the fuzzer works on edit scripts). scrypt is replaced by a cheap
// keyed hash for the run: the file's format, bounds and AEAD binding are
// under test, not scrypt, and the real one would limit the fuzzer to a few
// hundred inputs a second.
func FuzzParseIdentityFile(f *testing.F) {
	fastKDF(f)
	old := scryptKey
	scryptKey = func(password, salt []byte, n, r, p, keyLen int) ([]byte, error) {
		if n < 1<<minScryptLogN || r < 1 || p < 1 {
			return nil, errors.New("fuzz KDF: bad parameters")
		}
		h, _ := blake2b.New256(nil)
		binary.Write(h, binary.BigEndian, uint64(len(password)))
		h.Write(password)
		h.Write(salt)
		binary.Write(h, binary.BigEndian, [3]uint64{uint64(n), uint64(r), uint64(p)})
		return h.Sum(nil)[:keyLen], nil
	}
	f.Cleanup(func() { scryptKey = old })
	seeded := testIdentities(f, 1)[0]
	fromKeys, err := NewIdentity(seeded.KEMSecretKey, seeded.DSASecretKey)
	if err != nil {
		f.Fatal(err)
	}
	var bases [][]byte
	for _, id := range []*Identity{seeded, fromKeys} {
		data, err := id.marshalFile("pw")
		if err != nil {
			f.Fatal(err)
		}
		// Compact JSON: the edits then land on values more often.
		var buf bytes.Buffer
		if err := json.Compact(&buf, data); err != nil {
			f.Fatal(err)
		}
		bases = append(bases, buf.Bytes())
	}
	bases = append(bases, []byte(`{"version":1}`))
	for i := range bases {
		f.Add(uint8(i), []byte(nil), int16(0), "pw")
		f.Add(uint8(i), []byte(nil), int16(0), "wrong")
		f.Add(uint8(i), []byte{1, 0, 11, '2'}, int16(0), "pw") // "version":2
		f.Add(uint8(i), []byte(nil), int16(-1), "pw")
	}
	f.Fuzz(func(t *testing.T, which uint8, edits []byte, resize int16, passphrase string) {
		in := fuzzedit.Apply(fuzzedit.Pick(bases, which), edits, resize)
		got, err := ParseIdentityFile(in, passphrase)
		if err != nil {
			if !errors.Is(err, ErrInvalidIdentityFile) && !errors.Is(err, ErrWrongPassphrase) || got != nil {
				t.Fatalf("ParseIdentityFile: %v", err)
			}
			return
		}
		// Only the passphrase opens it, and what opens is the identity
		// that was sealed (every cleartext field is bound as AD).
		if passphrase != "pw" || got.SessionID != seeded.SessionID || !bytes.Equal(got.DSASecretKey, seeded.DSASecretKey) {
			t.Fatalf("opened a file that was not sealed with the passphrase, or another identity")
		}
	})
}

// BenchmarkScrypt measures the key derivation of identity files at the
// work factors discussed in LLM.md (r = 8, p = 1), to read the cost of the
// default on a given machine.
func BenchmarkScrypt(b *testing.B) {
	salt := make([]byte, saltSize)
	for _, logN := range []int{15, 17, 18, 20} {
		b.Run(fmt.Sprintf("logN=%d", logN), func(b *testing.B) {
			b.ReportMetric(float64(int64(128*8)<<logN)/(1<<20), "MiB")
			for b.Loop() {
				if _, err := scrypt.Key([]byte("correct horse"), salt, 1<<logN, 8, 1, KeySize); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestOldIdentityFiles: files written before the work factor was raised
// (scrypt N = 2^15, checked in under testdata/) still load, for both kinds
// of sealed secret. The identity is the known answer of LLM.md (seed
// 00 01 … 1f).
func TestOldIdentityFiles(t *testing.T) {
	const want = "076902757b91d44d57b0a3cabd1fdd9c752712d5781f05d1b4b7d9c0cff019708e"
	for _, name := range []string{"identity-scrypt15-seed.json", "identity-scrypt15-keys.json"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var f identityFile
			if err := json.Unmarshal(data, &f); err != nil || f.KDF.LogN != 15 || f.KDF.R != 8 || f.KDF.P != 1 {
				t.Fatalf("not an old file: kdf %+v, %v", f.KDF, err)
			}
			id, err := LoadIdentity(path, "correct horse battery staple")
			if err != nil {
				t.Fatal(err)
			}
			if id.SessionID != want {
				t.Fatalf("Session ID %s, want %s", id.SessionID, want)
			}
			if name == "identity-scrypt15-seed.json" { // once: scrypt is slow under -race
				if _, err := LoadIdentity(path, "correct horse battery stapler"); !errors.Is(err, ErrWrongPassphrase) {
					t.Fatalf("wrong passphrase: %v", err)
				}
			}
		})
	}
}

// TestNewFilesWorkFactor: Save derives its key with scrypt N = 2^17, r = 8,
// p = 1 and records exactly that in the file (the KDF is observed, not run,
// so the test stays fast under -race).
func TestNewFilesWorkFactor(t *testing.T) {
	var got [3]int
	old := scryptKey
	scryptKey = func(password, salt []byte, n, r, p, keyLen int) ([]byte, error) {
		got = [3]int{n, r, p}
		return make([]byte, keyLen), nil
	}
	t.Cleanup(func() { scryptKey = old })
	data, err := testIdentities(t, 1)[0].marshalFile("pw")
	if err != nil {
		t.Fatal(err)
	}
	var f identityFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if got != [3]int{1 << 17, 8, 1} || f.KDF.LogN != 17 || f.KDF.R != 8 || f.KDF.P != 1 {
		t.Fatalf("new file derived with N, r, p = %v and records %+v; want 2^17, 8, 1", got, f.KDF)
	}
}
