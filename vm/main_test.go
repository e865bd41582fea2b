package vm

import (
	"os"
	"testing"

	"github.com/luxfi/log"
)

// TestMain silences the INFO logs BadgerDB writes through the global
// luxfi/log logger at open and close.
func TestMain(m *testing.M) {
	log.SetDefault(log.NewNoOpLogger())
	log.SetGlobalLogger(log.NewNoOpLogger())
	os.Exit(m.Run())
}
