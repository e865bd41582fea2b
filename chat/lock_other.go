//go:build !unix

package chat

import "os"

// lockFile opens name; without flock, two processes sharing a store are not
// detected on this platform.
func lockFile(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
}
