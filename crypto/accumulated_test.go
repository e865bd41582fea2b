package crypto

import (
	"bytes"
	"crypto/sha3"
	"encoding/hex"
	"os"
	"runtime/debug"
	"testing"
)

// The accumulated known-answer tests follow the method of Go's
// crypto/mlkem TestAccumulated and crypto/internal/fips140test
// TestMLDSAAccumulated: a SHAKE128 stream with an empty input supplies every
// seed, message and ciphertext, and the outputs are absorbed into a second
// SHAKE128 whose first 32 bytes are compared with the expected digest. The
// vectors go through this package's parsing and packing path (seed-form
// secret keys, ParseKEMPublicKey / ParseDSAPublicKey of the packed public
// key, Bytes) rather than through circl directly.
//
// 100 iterations always run. The 10,000-iteration runs take about 1 s
// (ML-KEM) and 3 s (ML-DSA) normally, and 13 s and 36 s under the race
// detector on two cores. Both are skipped with -short; under -race the
// ML-DSA one is skipped too. SESSION_ACCUMULATED_10K=1 forces both.

const (
	mlkemAccumulated100 = "1114b1b6699ed191734fa339376afa7e285c9e6acf6ff0177d346696ce564415"
	mlkemAccumulated10k = "8a518cc63da366322a8e7a818c7a0d63483cb3528d34a4cf42f35d5ad73f22fc"
	mldsaAccumulated100 = "8358a1843220194417cadbc2651295cd8fc65125b5a5c1a239a16dc8b57ca199"
	mldsaAccumulated10k = "5ff5e196f0b830c3b10a9eb5358e7c98a3a20136cb677f3ae3b90175c3ace329"
)

func accumulatedRun10k(t *testing.T, skipUnderRace bool) {
	t.Helper()
	if os.Getenv("SESSION_ACCUMULATED_10K") == "1" {
		return
	}
	if testing.Short() {
		t.Skip("10,000-iteration accumulated test skipped with -short (set SESSION_ACCUMULATED_10K=1 to force)")
	}
	if skipUnderRace && raceDetectorEnabled() {
		t.Skip("10,000-iteration accumulated test skipped under -race (set SESSION_ACCUMULATED_10K=1 to force)")
	}
}

// raceDetectorEnabled reports whether the test binary was built with -race,
// from the build settings the toolchain records in it.
func raceDetectorEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func TestMLKEMAccumulated(t *testing.T) {
	t.Run("100", func(t *testing.T) {
		t.Parallel()
		testMLKEMAccumulated(t, 100, mlkemAccumulated100)
	})
	t.Run("10k", func(t *testing.T) {
		accumulatedRun10k(t, false)
		t.Parallel()
		testMLKEMAccumulated(t, 10000, mlkemAccumulated10k)
	})
}

func testMLKEMAccumulated(t *testing.T, n int, expected string) {
	s := sha3.NewSHAKE128()
	o := sha3.NewSHAKE128()
	seed := make([]byte, KEMSeedSize)
	msg := make([]byte, 32)
	ct1 := make([]byte, KEMCiphertextSize)

	for i := 0; i < n; i++ {
		s.Read(seed)
		dk, err := ParseKEMSecretKey(seed)
		if err != nil {
			t.Fatalf("iteration %d: ParseKEMSecretKey(seed): %v", i, err)
		}
		ekBytes := dk.Public().Bytes()
		o.Write(ekBytes)

		// Encapsulate to the re-parsed public key, so that Unpack (with its
		// modulus check) and Pack are both on the path.
		ek, err := ParseKEMPublicKey(ekBytes)
		if err != nil {
			t.Fatalf("iteration %d: ParseKEMPublicKey: %v", i, err)
		}
		s.Read(msg)
		ct, k, err := ek.encapsulate(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("iteration %d: encapsulate: %v", i, err)
		}
		o.Write(ct)
		o.Write(k)

		kk, err := dk.Decapsulate(ct)
		if err != nil {
			t.Fatalf("iteration %d: Decapsulate: %v", i, err)
		}
		if !bytes.Equal(kk, k) {
			t.Fatalf("iteration %d: k: got %x, expected %x", i, kk, k)
		}

		s.Read(ct1)
		k1, err := dk.Decapsulate(ct1)
		if err != nil {
			t.Fatalf("iteration %d: Decapsulate(random): %v", i, err)
		}
		o.Write(k1)
	}

	got := make([]byte, 32)
	o.Read(got)
	if h := hex.EncodeToString(got); h != expected {
		t.Errorf("ML-KEM-768 accumulated (%d): got %s, expected %s", n, h, expected)
	}
}

func TestMLDSAAccumulated(t *testing.T) {
	t.Run("100", func(t *testing.T) {
		t.Parallel()
		testMLDSAAccumulated(t, 100, mldsaAccumulated100)
	})
	t.Run("10k", func(t *testing.T) {
		accumulatedRun10k(t, true)
		t.Parallel()
		testMLDSAAccumulated(t, 10000, mldsaAccumulated10k)
	})
}

func testMLDSAAccumulated(t *testing.T, n int, expected string) {
	s := sha3.NewSHAKE128()
	o := sha3.NewSHAKE128()
	seed := make([]byte, DSASeedSize)
	msg := make([]byte, 0)

	for i := 0; i < n; i++ {
		s.Read(seed)
		dk, err := ParseDSASecretKey(seed)
		if err != nil {
			t.Fatalf("iteration %d: ParseDSASecretKey(seed): %v", i, err)
		}
		pk := dk.Public().Bytes()
		o.Write(pk)
		sig, err := dk.sign(nil, msg, false) // deterministic, empty context
		if err != nil {
			t.Fatalf("iteration %d: sign: %v", i, err)
		}
		o.Write(sig)
		pub, err := ParseDSAPublicKey(pk)
		if err != nil {
			t.Fatalf("iteration %d: ParseDSAPublicKey: %v", i, err)
		}
		if !bytes.Equal(pub.Bytes(), pk) {
			t.Fatalf("iteration %d: public key does not round-trip", i)
		}
		if !pub.Verify(msg, sig) {
			t.Fatalf("iteration %d: Verify failed", i)
		}
	}

	got := make([]byte, 32)
	o.Read(got)
	if h := hex.EncodeToString(got); h != expected {
		t.Errorf("ML-DSA-65 accumulated (%d): got %s, expected %s", n, h, expected)
	}
}
