//go:build !linux

package main

import (
	"errors"
	"os"
)

// On systems other than Linux the CLI reads passphrases from the
// environment (SESSION_PASSPHRASE) only.
func isTerminal(*os.File) bool { return false }

func disableEcho(*os.File) (func(), error) { return nil, errors.New("unsupported") }
