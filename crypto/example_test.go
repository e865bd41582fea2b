package crypto_test

import (
	"bytes"
	"fmt"
	"log"
	"strings"

	"github.com/luxfi/session/crypto"
)

// The README quick start: an identity, an envelope to a recipient, and a
// signature.
func Example() {
	identity, err := crypto.GenerateIdentity() // identity.SessionID "07…", 66 chars
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(identity.SessionID), identity.SessionID[:2])

	recipient, err := crypto.GenerateIdentity()
	if err != nil {
		log.Fatal(err)
	}
	recipientKEMPublicKey := recipient.KEMPublicKey
	plaintext := []byte("hello, post-quantum world")

	ciphertext, err := crypto.EncryptToRecipient(recipientKEMPublicKey, plaintext)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(ciphertext) == len(plaintext)+crypto.RecipientOverhead)

	opened, err := crypto.DecryptFromSender(recipient.KEMSecretKey, ciphertext)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(opened))

	message := []byte("a message to sign")
	signature, err := crypto.Sign(identity.DSASecretKey, message)
	if err != nil {
		log.Fatal(err)
	}
	valid := crypto.Verify(identity.DSAPublicKey, message, signature)
	fmt.Println(len(signature), valid)
	fmt.Println(crypto.Verify(recipient.DSAPublicKey, message, signature))

	// Output:
	// 66 07
	// true
	// hello, post-quantum world
	// 3309 true
	// false
}

// An identity derived from a 32-byte master seed, the one secret a user
// backs up; the same seed always gives the same identity.
func ExampleIdentityFromSeed() {
	var seed [crypto.SeedSize]byte
	for i := range seed {
		seed[i] = byte(i)
	}
	identity, err := crypto.IdentityFromSeed(seed)
	if err != nil {
		log.Fatal(err)
	}
	again, err := crypto.IdentityFromSeed(seed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(identity.SessionID)
	fmt.Println(again.SessionID == identity.SessionID, bytes.Equal(again.DSASecretKey, identity.DSASecretKey))
	backup, ok := identity.Seed()
	fmt.Println(ok, backup == seed)
	fmt.Println(identity) // never prints keys

	// Output:
	// 076902757b91d44d57b0a3cabd1fdd9c752712d5781f05d1b4b7d9c0cff019708e
	// true true
	// true true
	// Identity(076902757b91d44d57b0a3cabd1fdd9c752712d5781f05d1b4b7d9c0cff019708e)
}

// A signed message is signature || message; anyone holding the signer's
// public identity can check it and recover the message.
func ExampleIdentity_SignMessage() {
	alice, err := crypto.GenerateIdentity()
	if err != nil {
		log.Fatal(err)
	}
	signed, err := alice.SignMessage([]byte("meet at noon"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(signed) - crypto.SignatureSize)

	public := alice.PublicIdentity() // what Alice publishes
	msg, err := public.VerifySignedMessage(signed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(msg))

	signed[len(signed)-1] ^= 1 // "meet at noom"
	_, err = public.VerifySignedMessage(signed)
	fmt.Println(err)

	// Output:
	// 12
	// meet at noon
	// invalid signature
}

// EncryptTo and DecryptFrom use identities instead of raw keys.
func ExampleIdentity_EncryptTo() {
	alice, _ := crypto.GenerateIdentity()
	bob, _ := crypto.GenerateIdentity()

	envelope, err := alice.EncryptTo(bob.PublicIdentity(), []byte("for Bob only"))
	if err != nil {
		log.Fatal(err)
	}
	plaintext, err := bob.DecryptFrom(envelope)
	fmt.Println(string(plaintext), err)

	_, err = alice.DecryptFrom(envelope)
	fmt.Println(err)

	// Output:
	// for Bob only <nil>
	// decryption failed
}

// ParseSessionID accepts the post-quantum "07" and legacy "05" forms.
func ExampleParseSessionID() {
	id, err := crypto.ParseSessionID("07" + strings.Repeat("ab", 32))
	fmt.Println(id.IsPostQuantum(), err)
	legacy, err := crypto.ParseSessionID("05" + strings.Repeat("ab", 32))
	fmt.Println(legacy.IsPostQuantum(), err)
	_, err = crypto.ParseSessionID("07" + strings.Repeat("AB", 32))
	fmt.Println(err != nil)

	// Output:
	// true <nil>
	// false <nil>
	// true
}
