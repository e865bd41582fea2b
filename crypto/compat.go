package crypto

// Names of the reference implementation (github.com/luxfi/session at
// f794d5b, the API listed in MIGRATING.md), kept so that code written
// against it compiles unchanged. Each is an alias of this package's own
// name; the values are the same.
//
// Behaviour is compatible, not identical: every input the reference
// accepts gives the same result here, and some inputs it refuses are
// accepted (secret keys in their seed forms, 64 and 32 bytes, besides the
// expanded 2400 and 4032 bytes). Errors match the same sentinels with
// errors.Is. (*Identity).VerifyMessage returns a bool as the reference does;
// [Identity.VerifySignedMessage] is the same check with the reason.
const (
	// PQPrefix is [PrefixPostQuantum], "07".
	PQPrefix = PrefixPostQuantum
	// LegacyPrefix is [PrefixLegacy], "05".
	LegacyPrefix = PrefixLegacy

	// MLKEMPublicKeySize is [KEMPublicKeySize], 1184.
	MLKEMPublicKeySize = KEMPublicKeySize
	// MLKEMSecretKeySize is [KEMSecretKeySize], 2400 (the expanded form).
	MLKEMSecretKeySize = KEMSecretKeySize
	// MLKEMCiphertextSize is [KEMCiphertextSize], 1088.
	MLKEMCiphertextSize = KEMCiphertextSize
	// MLKEMSharedKeySize is [KEMSharedSecretSize], 32.
	MLKEMSharedKeySize = KEMSharedSecretSize

	// MLDSAPublicKeySize is [DSAPublicKeySize], 1952.
	MLDSAPublicKeySize = DSAPublicKeySize
	// MLDSASecretKeySize is [DSASecretKeySize], 4032 (the expanded form).
	MLDSASecretKeySize = DSASecretKeySize
	// MLDSASignatureSize is [SignatureSize], 3309.
	MLDSASignatureSize = SignatureSize
)

// VerifyMessage checks a signed message made by SignMessage (signature ‖
// message) and returns the message and true, or nil and false. Only the
// identity's public key is needed. This is the reference's signature;
// [Identity.VerifySignedMessage] says why a message was refused.
func (id *Identity) VerifyMessage(signedMessage []byte) ([]byte, bool) {
	msg, err := id.VerifySignedMessage(signedMessage)
	if err != nil {
		return nil, false
	}
	return msg, true
}
