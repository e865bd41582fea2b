// Package keyfiletest lowers the work factor of identity files that tests
// write, so that suites which create and open many of them (the CLI's) do
// not spend their time in scrypt.
//
// It must never be used outside tests: a file written with a low work
// factor is cheap to brute-force. Files record their parameters, so what a
// test writes still loads anywhere. This mirrors Go's
// crypto/mlkem/mlkemtest.
package keyfiletest

import (
	"fmt"

	_ "github.com/luxfi/session/crypto" // installs the hook
	"github.com/luxfi/session/crypto/internal/hook"
)

// MinWorkFactor is the lowest work factor (log2 N) identity files may
// carry: 10, 1 MiB of memory at r = 8.
const MinWorkFactor = 10

// SetWorkFactor makes crypto's Save use scrypt N = 2^logN (r = 8, p = 1)
// until restore is called. It panics on a logN that files may not carry.
//
// The setting is process-wide. It is safe to call while other goroutines
// save files, but suites whose tests run in parallel should set it once,
// from TestMain or init, so that one test's restore does not undo
// another's setting.
func SetWorkFactor(logN int) (restore func()) {
	if logN < MinWorkFactor || logN > 22 {
		panic(fmt.Sprintf("keyfiletest: work factor %d out of range", logN))
	}
	return hook.SetScryptLogN(logN)
}
