//go:build unix

package chat

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on name (created if needed),
// held until the returned file is closed.
func lockFile(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrStoreLocked
		}
		return nil, err
	}
	return f, nil
}
