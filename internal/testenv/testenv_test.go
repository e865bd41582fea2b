package testenv

import "testing"

func TestLong(t *testing.T) {
	t.Setenv(LongEnv, "")
	ran := false
	t.Run("unset", func(t *testing.T) {
		Long(t)
		ran = true
	})
	if ran || LongEnabled() {
		t.Fatal("a long test ran without " + LongEnv + "=1")
	}
	t.Setenv(LongEnv, "1")
	t.Run("set", func(t *testing.T) {
		Long(t)
		ran = true
	})
	if !ran || !LongEnabled() {
		t.Fatal("a long test was skipped with " + LongEnv + "=1")
	}
}
