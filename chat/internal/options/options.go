// Package options holds the configuration that chat.Option values set. It
// is internal so that only chat/chattest can make options: the
// deterministic randomness of known-answer tests never reaches other code.
package options

import "io"

// Config configures a chat.Device.
type Config struct {
	// Rand replaces crypto/rand as the source of every random value.
	Rand io.Reader
	// Deterministic makes signatures deterministic (rnd = 0).
	Deterministic bool
}
