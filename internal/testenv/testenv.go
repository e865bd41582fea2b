// Package testenv holds switches for the repository's tests.
//
// The README's test command (go test -race ./...) must stay quick on a
// two-core machine. Soak, load and crash tests that take long are marked
// with Long and run only when SESSION_LONG_TESTS=1; .ci/run runs them as a
// step of their own:
//
//	SESSION_LONG_TESTS=1 go test -race ./...
//
// (go test caches the results of packages that do not read the variable,
// so that second run repeats only the packages with long tests.)
package testenv

import (
	"os"
	"testing"
)

// LongEnv is the environment variable that enables long tests.
const LongEnv = "SESSION_LONG_TESTS"

// Long skips the test unless SESSION_LONG_TESTS=1, saying how to run it.
func Long(t testing.TB) {
	t.Helper()
	if os.Getenv(LongEnv) != "1" {
		t.Skipf("long test: set %s=1 to run it (.ci/run does, as its own step)", LongEnv)
	}
}

// LongEnabled reports whether long tests run.
func LongEnabled() bool { return os.Getenv(LongEnv) == "1" }
