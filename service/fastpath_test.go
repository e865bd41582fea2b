package service

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// slowDecode is decodeParams without the fast path, for comparison.
func slowDecode(raw []byte) ([]byte, error) {
	var a struct {
		Tx []byte `json:"tx"`
	}
	err := decodeParams(raw, &a)
	return a.Tx, err
}

// TestFastTxParamsMatchesGeneralPath feeds the same params to the fast path
// (through decodeParams with *TxArgs) and to the general decoder: whatever
// the fast path accepts must decode identically, and whatever it declines
// must still get the general path's answer.
func TestFastTxParamsMatchesGeneralPath(t *testing.T) {
	payload := []byte("\x00\x01 transaction bytes \xff/+=")
	enc := base64.StdEncoding.EncodeToString(payload)
	cases := []struct {
		params string
		fast   bool // the fast path takes it
	}{
		{`{"tx":"` + enc + `"}`, true},
		{" {\n\t\"tx\" : \"" + enc + "\" \r\n} ", true},
		{`{"tx":""}`, true},
		{`{"tx":"` + strings.ReplaceAll(enc, "/", `\/`) + `"}`, false}, // JSON escape
		{`{"tx":"` + enc + `","x":1}`, false},                          // unknown field
		{`{"Tx":"` + enc + `"}`, false},                                // case differs
		{`{"tx":"` + enc[:len(enc)-1] + `"}`, false},                   // bad base64
		{`{"tx":` + `123}`, false},
		{`[{"tx":"` + enc + `"}]`, false},
		{`{"tx":"` + enc + `"}}`, false},
		{``, false},
	}
	for _, c := range cases {
		got, ok := fastTxParams([]byte(c.params))
		if ok != c.fast {
			t.Errorf("%.40q: fast path took it: %v, want %v", c.params, ok, c.fast)
		}
		want, slowErr := slowDecode([]byte(c.params))
		if ok && (slowErr != nil || !bytes.Equal(got, want)) {
			t.Errorf("%.40q: fast path gave %x, general path %x (%v)", c.params, got, want, slowErr)
		}
		var a TxArgs
		err := decodeParams([]byte(c.params), &a)
		if (err == nil) != (slowErr == nil) || (err == nil && !bytes.Equal(a.Tx, want)) {
			t.Errorf("%.40q: decodeParams %v (%x), general path %v (%x)", c.params, err, a.Tx, slowErr, want)
		}
	}
}

func FuzzFastTxParams(f *testing.F) {
	f.Add([]byte(`{"tx":"AAEC"}`))
	f.Add([]byte(` { "tx" : "AA==" } `))
	f.Add([]byte(`{"tx":"A\/=="}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := fastTxParams(raw)
		if !ok {
			return
		}
		want, err := slowDecode(raw)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("fast path accepted %q as %x; general path: %x, %v", raw, got, want, err)
		}
	})
}
