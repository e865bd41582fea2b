package crypto_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/luxfi/session/crypto"
)

// Seal and Open, as in the README: an envelope to several recipients that
// authenticates its sender to them and binds associated data.
func ExampleSeal() {
	alice, _ := crypto.GenerateIdentity()
	bob, _ := crypto.GenerateIdentity()

	// Seal needs only the recipients' public keys.
	envelope, err := crypto.Seal(alice, []*crypto.Identity{bob.PublicIdentity(), alice.PublicIdentity()},
		[]byte("hello"), []byte("session 42"))
	if err != nil {
		log.Fatal(err)
	}

	plaintext, senderSessionID, err := crypto.Open(bob, envelope, []byte("session 42"))
	// senderSessionID == alice.SessionID, verified with her ML-DSA-65 key
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(plaintext), senderSessionID == alice.SessionID)

	// Other associated data, or someone who is not a recipient: refused.
	_, _, err = crypto.Open(bob, envelope, []byte("session 43"))
	fmt.Println(err)
	carol, _ := crypto.GenerateIdentity()
	_, _, err = crypto.Open(carol, envelope, []byte("session 42"))
	fmt.Println(err)
	// Output:
	// hello true
	// decryption failed
	// not a recipient of this envelope
}

// Keeping an identity, as in the README: derived from a backup seed,
// saved under a passphrase, loaded back, and its public part exported.
func ExampleIdentity_Save() {
	dir := exampleDir()
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "alice.json")
	passphrase := "correct horse battery staple"
	var seed [crypto.SeedSize]byte
	copy(seed[:], "a 32-byte seed, kept on paper!!!")
	saved, _ := crypto.IdentityFromSeed(seed)

	id, _ := crypto.IdentityFromSeed(seed) // deterministic from a 32-byte backup seed
	err := id.Save(path, passphrase)       // scrypt + XChaCha20-Poly1305, mode 0600, atomic
	if err != nil {
		log.Fatal(err)
	}
	id, err = crypto.LoadIdentity(path, passphrase)
	if err != nil {
		log.Fatal(err)
	}
	pub, err := id.ExportPublic() // public keys only, for sharing
	if err != nil {
		log.Fatal(err)
	}

	fmt.Println(id.SessionID == saved.SessionID)
	st, _ := os.Stat(path)
	fmt.Println(st.Mode().Perm())
	fmt.Println(strings.Contains(string(pub), "SecretKey"))
	// Output:
	// true
	// -rw-------
	// false
}

// exampleDir is a new temporary directory.
func exampleDir() string {
	dir, err := os.MkdirTemp("", "identity-example-")
	if err != nil {
		log.Fatal(err)
	}
	return dir
}
