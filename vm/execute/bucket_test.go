package execute

import (
	"errors"
	"strings"
	"testing"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/vm/tx"
)

// TestTake pins the GCRA arithmetic of docs/chain.md section 8: a bucket
// of burst B refilled every T ms admits B at once, then one per T, never
// stores more than B, charges n tokens at once, and leaves its state alone
// on refusal.
func TestTake(t *testing.T) {
	b := config.Bucket{Burst: 3, RefillSeconds: 10} // T = 10,000 ms
	var tat int64
	now := int64(1_000_000)
	for i := 0; i < 3; i++ {
		if err := take(&tat, b, 1, now, "x"); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	if tat != now+30_000 {
		t.Fatalf("tat %d", tat)
	}
	err := take(&tat, b, 1, now, "x")
	if !errors.Is(err, tx.ErrRateLimited) || !strings.Contains(err.Error(), "1010000") {
		t.Fatalf("4th token: %v (must name block time %d)", err, now+10_000)
	}
	if tat != now+30_000 {
		t.Fatal("a refusal changed the bucket")
	}
	if err := take(&tat, b, 1, now+9_999, "x"); err == nil {
		t.Fatal("a token 1 ms early")
	}
	if err := take(&tat, b, 1, now+10_000, "x"); err != nil {
		t.Fatal(err)
	}
	// A long pause refills to the burst, not beyond.
	later := now + 1_000_000
	if err := take(&tat, b, 3, later, "x"); err != nil {
		t.Fatal(err)
	}
	if err := take(&tat, b, 1, later, "x"); err == nil {
		t.Fatal("more than the burst after a pause")
	}
	// More tokens than the bucket holds are never granted.
	var fresh int64
	if err := take(&fresh, b, 4, later, "x"); !errors.Is(err, tx.ErrRateLimited) || !strings.Contains(err.Error(), "holds 3") {
		t.Fatalf("4 of 3: %v", err)
	}
}
