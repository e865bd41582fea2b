package wsclient

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestScanTop(t *testing.T) {
	cases := []struct {
		in    string
		kind  topKind
		id    string
		hasID bool
	}{
		{`{"jsonrpc":"2.0","result":{"a":[1,"]}",{"id":9}]},"id":17}`, topObject, "17", true},
		{` { "id" : "abc" , "result" : null } ` + "\n", topObject, `"abc"`, true},
		{`{"id":"a\"b\\","result":0}`, topObject, `"a\"b\\"`, true},
		{`{"result":"x\\","id":-1.5e+3}`, topObject, "-1.5e+3", true},
		{`{"id":null}`, topObject, "null", true},
		{`{"id":{"x":1}}`, topObject, `{"x":1}`, true},
		{`{"jsonrpc":"2.0","method":"n","params":{"id":1}}`, topObject, "", false},
		{`{}`, topObject, "", false},
		{`[{"id":1},{"id":2}]`, topArray, "", false},
		{` [] `, topArray, "", false},
		{``, topInvalid, "", false},
		{`   `, topInvalid, "", false},
		{`"id"`, topInvalid, "", false},
		{`17`, topInvalid, "", false},
		{`null`, topInvalid, "", false},
		{`{"id":1,"id":1}`, topInvalid, "", false},
		{`{"Id":1}`, topInvalid, "", false},
		{`{"iD":1,"id":1}`, topInvalid, "", false},
		{`{"i\u0064":1}`, topInvalid, "", false},
		{`{"id":1}x`, topInvalid, "", false},
		{`{"id":1}{}`, topInvalid, "", false},
		{`{"id":1,}`, topInvalid, "", false},
		{`{"id" 1}`, topInvalid, "", false},
		{`{id:1}`, topInvalid, "", false},
		{`{"id":01}`, topInvalid, "", false},
		{`{"id":1.}`, topInvalid, "", false},
		{`{"id":-}`, topInvalid, "", false},
		{`{"id":1e}`, topInvalid, "", false},
		{`{"id":tru}`, topInvalid, "", false},
		{`{"id":truex}`, topInvalid, "", false},
		{`{"id":"a` + "\n" + `"}`, topInvalid, "", false},
		{`{"id":1,"result":[1,2}`, topInvalid, "", false},
		{`{"id":1,"result":{"a":1]}`, topInvalid, "", false},
		{`{"id":1,"result":"unterminated}`, topInvalid, "", false},
		{`[1,2`, topInvalid, "", false},
		{`[1]]`, topInvalid, "", false},
		{`{"result":[` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `],"id":2}`, topObject, "2", true},
	}
	for _, c := range cases {
		kind, id, hasID := scanTop([]byte(c.in))
		if kind != c.kind || string(id) != c.id || hasID != c.hasID {
			t.Errorf("%s: kind %d id %q %v, want %d %q %v", c.in, kind, id, hasID, c.kind, c.id, c.hasID)
		}
	}
}

// FuzzScanTop: on valid JSON, scanTop agrees with encoding/json about the
// top level (an object's "id" member, byte for byte as RawMessage keeps
// it), except where it refuses an ambiguous key; on any input, what it
// calls an object or array starts and ends as one.
func FuzzScanTop(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","result":{"a":[1,"]}"]},"id":17}`, `[{"id":1}]`, `{"id":"x\"y"}`, `{"Id":1}`, `{"a":"\\"}`, `{"id":1e5}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		kind, id, hasID := scanTop(in)
		trimmed := bytes.TrimSpace(in)
		switch kind {
		case topObject:
			if trimmed[0] != '{' || trimmed[len(trimmed)-1] != '}' {
				t.Fatalf("object %q", in)
			}
		case topArray:
			if trimmed[0] != '[' || trimmed[len(trimmed)-1] != ']' {
				t.Fatalf("array %q", in)
			}
		}
		if !json.Valid(in) {
			return
		}
		var obj map[string]json.RawMessage
		isObj := json.Unmarshal(in, &obj) == nil
		var arr []json.RawMessage
		isArr := json.Unmarshal(in, &arr) == nil
		switch {
		case isArr:
			if kind != topArray {
				t.Fatalf("array %q: kind %d", in, kind)
			}
		case isObj:
			if kind == topInvalid {
				if !ambiguousKeys(in) {
					t.Fatalf("object %q refused", in)
				}
				return
			}
			want, ok := obj["id"]
			if kind != topObject || hasID != ok || ok && !bytes.Equal(id, want) {
				t.Fatalf("object %q: kind %d id %q %v, encoding/json %q %v", in, kind, id, hasID, want, ok)
			}
		default:
			if kind != topInvalid {
				t.Fatalf("scalar %q: kind %d", in, kind)
			}
		}
	})
}

// ambiguousKeys reports whether a valid JSON object has a top-level key
// scanTop refuses: escaped, "id" in another case, or "id" twice.
func ambiguousKeys(in []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.Token() // {
	ids := 0
	for dec.More() {
		start := dec.InputOffset()
		tok, _ := dec.Token()
		key := tok.(string)
		raw := in[start:dec.InputOffset()]
		if bytes.IndexByte(raw, '\\') >= 0 || strings.EqualFold(key, "id") && key != "id" {
			return true
		}
		if key == "id" {
			ids++
		}
		var v json.RawMessage
		dec.Decode(&v)
	}
	return ids > 1
}

// BenchmarkScanTop5K: scanning a 5 KB response for its id, beside
// json.Valid on it (which a full decode costs at least).
func BenchmarkScanTop5K(b *testing.B) {
	msg := []byte(response("12345", `{"messages":[{"from":"`+strings.Repeat("QUJD", 600)+`","position":7},{"from":"`+strings.Repeat("REVG", 600)+`","position":8}],"more":false}`))
	b.Run("scanTop", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			if _, id, _ := scanTop(msg); string(id) != "12345" {
				b.Fatal(string(id))
			}
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			json.Valid(msg)
		}
	})
}
