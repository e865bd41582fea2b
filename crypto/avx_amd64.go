//go:build amd64 && !purego

package crypto

// vzeroupper executes VZEROUPPER.
//
//go:noescape
func vzeroupper()

// osSupportsAVX reports whether the CPU and the OS support AVX (the
// package stays a leaf: no golang.org/x/sys/cpu).
//
//go:noescape
func osSupportsAVX() bool

var hasAVX = osSupportsAVX()

// afterAVX clears the upper halves of the vector registers after a call
// into circl, whose AVX2 code (ML-DSA, ML-KEM, Keccak) returns without
// VZEROUPPER. Until something clears them, every legacy-SSE instruction
// that follows on the thread (Go's own code uses them, SHA-NI is one) can
// run far slower: on the development machine a SHA-256 of a 3.7 KB
// transaction took about 1 ms right after an ML-DSA verification, against
// 5–20 µs otherwise (BenchmarkHashAfterVerify).
func afterAVX() {
	if hasAVX {
		vzeroupper()
	}
}
