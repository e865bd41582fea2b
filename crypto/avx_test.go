package crypto

import (
	"crypto/sha256"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"golang.org/x/sys/cpu"
)

// BenchmarkHashAfterVerify is what a node does per transaction: verify
// its ML-DSA-65 signature, then hash bytes (a 3.7 KB transaction ID) on
// the same thread. "wrapper" verifies through this package, which clears
// the vector registers' upper halves after circl's AVX2 code; "circl"
// calls circl directly, leaving them dirty for the hash that follows.
func BenchmarkHashAfterVerify(b *testing.B) {
	id, err := GenerateIdentity()
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 3676)
	sig, err := Sign(id.DSASecretKey, msg)
	if err != nil {
		b.Fatal(err)
	}
	pk, err := ParseDSAPublicKey(id.DSAPublicKey)
	if err != nil {
		b.Fatal(err)
	}
	var raw mldsa65.PublicKey
	if err := raw.UnmarshalBinary(id.DSAPublicKey); err != nil {
		b.Fatal(err)
	}
	b.Run("wrapper", func(b *testing.B) {
		for b.Loop() {
			if !pk.Verify(msg, sig) {
				b.Fatal("verify")
			}
			sha256.Sum256(msg)
		}
	})
	b.Run("circl", func(b *testing.B) {
		for b.Loop() {
			if !mldsa65.Verify(&raw, msg, nil, sig) {
				b.Fatal("verify")
			}
			sha256.Sum256(msg)
		}
	})
}

// TestOSSupportsAVX: the package's own CPUID/XGETBV test agrees with
// golang.org/x/sys/cpu (which this leaf package does not import).
func TestOSSupportsAVX(t *testing.T) {
	if hasAVX != cpu.X86.HasAVX {
		t.Fatalf("osSupportsAVX() = %v, x/sys/cpu says %v", hasAVX, cpu.X86.HasAVX)
	}
}
