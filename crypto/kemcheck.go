package crypto

// ValidKEMPublicKey reports whether b is an ML-KEM-768 encapsulation key
// that passes the FIPS 203 input check (1184 bytes, every coefficient of t̂
// below q). It does not expand the key's matrix, so it costs a few
// microseconds, not the ~25 µs of ParseKEMPublicKey: the chain checks the
// prekeys of a PublishPrekeys transaction with it.
func ValidKEMPublicKey(b []byte) bool {
	return len(b) == KEMPublicKeySize && kemPublicKeyCanonical(b)
}
