// Package crashpoint lets a test kill a process at named points, such as
// each write of a client's store, to check what a restart recovers (the
// crash test of cmd/sessionctl runs the real binary this way).
//
// Hit does nothing unless the binary is built with the build tag
// "crashpoints" and SESSION_CRASH_AT is set: then the process kills itself
// with SIGKILL at the SESSION_CRASH_AT-th point it passes (counting from 1),
// after appending the points it passed to the file SESSION_CRASH_LOG, if
// set. Builds without the tag compile Hit to nothing.
package crashpoint

// Environment variables read by builds with the tag.
const (
	EnvAt  = "SESSION_CRASH_AT"
	EnvLog = "SESSION_CRASH_LOG"
)
