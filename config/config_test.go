package config

import (
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
	want := Config{SessionTTL: 60, MaxMessages: 5, MaxChannels: 2, RetentionDays: 1, IDPrefix: "07"}
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
