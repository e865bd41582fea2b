//go:build race

package chat

// raceEnabled: the race detector slows the tests about tenfold; the
// heaviest ones cover less under it (and all of it without, and in the soak).
const raceEnabled = true
