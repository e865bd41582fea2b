package chat

import "github.com/luxfi/session/chat/internal/options"

// Option configures a Device. Only package chat/chattest makes options: a
// device whose randomness is known to anyone else provides no security.
type Option func(*options.Config)
