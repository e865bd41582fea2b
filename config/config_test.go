package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseDefaults(t *testing.T) {
	for _, in := range []string{"", "  ", "{}", "null"} {
		c, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", in, err)
		}
		if c != Default() {
			t.Fatalf("Parse(%q) = %+v, want defaults", in, c)
		}
	}
	d := Default()
	if d.SessionTTL != 86400 || d.MaxMessages != 10000 || d.MaxChannels != 1000 || d.RetentionDays != 30 || d.IDPrefix != "07" {
		t.Fatalf("unexpected defaults %+v", d)
	}
}

func TestParseOverrides(t *testing.T) {
	c, err := Parse([]byte(`{"sessionTTL":60,"maxMessages":5,"maxChannels":2,"retentionDays":1,"idPrefix":"07"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.SessionTTL, want.MaxMessages, want.MaxChannels, want.RetentionDays = 60, 5, 2, 1
	if c != want {
		t.Fatalf("got %+v want %+v", c, want)
	}
	if c.SessionTTLMillis() != 60_000 || c.RetentionMillis() != 86_400_000 || c.IDPrefixByte() != 0x07 {
		t.Fatal("unit conversions")
	}
	// A partial config keeps the other defaults.
	c, err = Parse([]byte(`{"maxMessages":7}`))
	if err != nil || c.MaxMessages != 7 || c.SessionTTL != DefaultSessionTTL {
		t.Fatalf("partial: %+v %v", c, err)
	}
}

func TestParseInvalid(t *testing.T) {
	cases := []struct{ in, mention string }{
		{`{"sessionTTL":0}`, "sessionTTL"},
		{`{"sessionTTL":-5}`, "sessionTTL"},
		{`{"sessionTTL":99999999999}`, "sessionTTL"},
		{`{"maxMessages":0}`, "maxMessages"},
		{`{"maxMessages":99999999999}`, "maxMessages"},
		{`{"maxChannels":-1}`, "maxChannels"},
		{`{"retentionDays":0}`, "retentionDays"},
		{`{"retentionDays":1000000}`, "retentionDays"},
		{`{"idPrefix":"09"}`, "idPrefix"},
		{`{"idPrefix":"05"}`, "legacy"},
		{`{"idPrefix":""}`, "idPrefix"},
		{`{"sessionTtl":5}`, "unknown field"},
		{`{"sessionTTL":"60"}`, "sessionTTL"},
		{`{"sessionTTL":1.5}`, "sessionTTL"},
		{`{} {}`, "trailing"},
		{`{"registration":{"memoryKiB":4}}`, "registration.memoryKiB"},
		{`{"registration":{"memorykib":4096}}`, `unknown field "registration.memorykib"`},
		{`{"registration":{"workBits":33}}`, "registration.workBits"},
		{`{"registration":{"prefilterBits":-1}}`, "registration.prefilterBits"},
		{`{"registration":{"iterations":0}}`, "registration.iterations"},
		{`{"registration":{"maxPerBlock":0}}`, "registration.maxPerBlock"},
		{`{"registration":{"maxPerBlock":1,"maxPerBlock":2}}`, "duplicate"},
		{`{"rateLimits":{"messages":{"burst":0}}}`, "rateLimits.messages.burst"},
		{`{"rateLimits":{"joins":{"refillSeconds":0}}}`, "rateLimits.joins.refillSeconds"},
		{`{"rateLimits":{"posts":{"burst":2000000000}}}`, "rateLimits.posts.burst"},
		{`{"rateLimits":{"chats":{"burst":1}}}`, `unknown field "rateLimits.chats"`},
		{`{"prekeys":{"strangerReserve":101}}`, "prekeys.strangerReserve"},
		{`{"registration":{"anchorWindow":0}}`, "registration.anchorWindow"},
		{`{"registration":{"anchorWindow":2000000}}`, "registration.anchorWindow"},
		// A block's Argon2id is bounded: 65 × 8 MiB is too much.
		{`{"registration":{"maxPerBlock":65}}`, "maxPerBlock × memoryKiB × iterations"},
		{`{"registration":{"memoryKiB":65536,"maxPerBlock":16}}`, "maxPerBlock × memoryKiB × iterations"},
		// A costly Argon2id needs a pre-filter.
		{`{"registration":{"prefilterBits":0}}`, "registration.prefilterBits must be at least 12"},
		{`{"registration":{"memoryKiB":1024,"prefilterBits":11}}`, "registration.prefilterBits must be at least 12"},
		{`{"rateLimits":{"bytes":{"burst":0}}}`, "rateLimits.bytes.burst"},
		{`{"prekeys":{"strangerClaims":{"burst":-1}}}`, "prekeys.strangerClaims.burst"},
		{`[`, "invalid chain config"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.in))
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Parse(%s): err = %v, want ErrInvalidConfig", tc.in, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("Parse(%s): error %q does not mention %q", tc.in, err, tc.mention)
		}
	}
}

func TestParseNested(t *testing.T) {
	c, err := Parse([]byte(`{"registration":{"workBits":2},"rateLimits":{"messages":{"burst":5}},"prekeys":{"strangerReserve":0}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Registration.WorkBits = 2
	want.RateLimits.Messages.Burst = 5
	want.Prekeys.StrangerReserve = 0
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	// Every bucket has a name and a value; the kinds cover the struct.
	for k := BucketKind(0); k < NumBuckets; k++ {
		if b := Default().RateLimits.Bucket(k); b.Burst == 0 || b.RefillSeconds == 0 || k.String() == "" {
			t.Fatalf("bucket %d: %+v", k, b)
		}
	}
	if Default().RateLimits.Bucket(NumBuckets) != (Bucket{}) {
		t.Fatal("out-of-range bucket kind")
	}
	// The canonical JSON round-trips.
	b, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := Parse(b); err != nil || c != Default() {
		t.Fatalf("round trip: %v", err)
	}
	if err := MinimalRegistration(); err.MemoryKiB != 8 {
		t.Fatal("minimal registration")
	}
	m := Default()
	m.Registration = MinimalRegistration()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	// A cheap Argon2id needs no pre-filter; the bounds are inclusive.
	for _, in := range []string{
		`{"registration":{"memoryKiB":1023,"prefilterBits":0,"maxPerBlock":512}}`,
		`{"registration":{"memoryKiB":8192,"maxPerBlock":64,"iterations":1,"prefilterBits":12}}`,
	} {
		if _, err := Parse([]byte(in)); err != nil {
			t.Fatalf("Parse(%s): %v", in, err)
		}
	}
}

// TestDefaultWork: the defaults keep their documented relations (one
// identity about a second: 2^workBits × (Argon2id + 2^prefilterBits
// BLAKE2b) with the measured 10 ms and 0.205 µs; the pre-filter several
// times an Argon2id).
func TestDefaultWork(t *testing.T) {
	r := DefaultRegistration()
	const argonMs, blakeMs = 10.0, 0.000205
	pre := float64(int64(1)<<r.PrefilterBits) * blakeMs
	perID := float64(int64(1)<<r.WorkBits) * (argonMs + pre)
	if pre < 4*argonMs {
		t.Fatalf("pre-filter %.1f ms is not several times an Argon2id (%.1f ms)", pre, argonMs)
	}
	if perID < 800 || perID > 1300 {
		t.Fatalf("one identity costs %.0f ms, want about a second", perID)
	}
	if Default().RateLimits.Requests.Burst < MaxParticipants-1 {
		t.Fatal("the requests burst does not admit a full group of strangers")
	}
}
