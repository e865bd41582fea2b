package main

import "github.com/luxfi/session/crypto/keyfiletest"

// The CLI's tests create and open identity files in nearly every command:
// at the default scrypt work factor (N = 2^17) that would be most of their
// time. The files they write record the lower factor.
func init() { keyfiletest.SetWorkFactor(keyfiletest.MinWorkFactor) }
