//go:build !amd64 || purego

package crypto

// afterAVX is a no-op off amd64 (see avx_amd64.go).
func afterAVX() {}
