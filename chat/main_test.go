package chat

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	storeLogN = 10 // scrypt at 1 MiB: the tests open stores hundreds of times
	os.Exit(m.Run())
}
