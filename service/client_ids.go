package service

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"sync"

	"github.com/luxfi/ids"
)

// A node is untrusted, and decoding a CB58 ID costs time that grows with
// the square of its length (10 KB: 32 ms, 100 KB: 3 s): a reply naming a
// huge "ID" could keep a client busy for hours. Before a result is decoded,
// every string under a key that the result's type decodes as an ids.ID is
// held to maxCB58IDLen, as the node holds parameters.

var (
	idType    = reflect.TypeFor[ids.ID]()
	idKeysMap sync.Map // reflect.Type → map[string]bool
)

// idKeys returns the JSON names of the fields of t (and of the types it
// holds) that decode as an ids.ID or a list of them.
func idKeys(t reflect.Type) map[string]bool {
	if v, ok := idKeysMap.Load(t); ok {
		return v.(map[string]bool)
	}
	keys := map[string]bool{}
	collectIDKeys(t, keys, map[reflect.Type]bool{})
	idKeysMap.Store(t, keys)
	return keys
}

func collectIDKeys(t reflect.Type, keys map[string]bool, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		if t == idType {
			return
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == idType || seen[t] {
		return
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if name == "" {
			name = f.Name
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array && ft != idType {
			ft = ft.Elem()
		}
		if ft == idType {
			keys[name] = true
			keys[strings.ToLower(name)] = true // encoding/json matches keys case-insensitively
		} else {
			collectIDKeys(f.Type, keys, seen) // nested and embedded structs
		}
	}
}

// checkReplyIDs refuses a result (valid JSON) holding, under a key that
// result decodes as an ids.ID, a string longer than any ID.
func checkReplyIDs(raw []byte, result any) error {
	keys := idKeys(reflect.TypeOf(result))
	if len(keys) == 0 {
		return nil
	}
	var bad string
	var walk func(v []byte, idKey bool) bool
	walk = func(v []byte, idKey bool) bool {
		v = bytes.TrimLeft(v, " \t\r\n")
		if len(v) == 0 {
			return true
		}
		switch v[0] {
		case '"':
			return !idKey || len(v)-2 <= maxCB58IDLen
		case '{':
			ok := true
			eachMember(v, func(key, value []byte) bool {
				k := string(key)
				if !walk(value, keys[k] || keys[strings.ToLower(k)]) {
					if bad == "" {
						bad = k // the innermost key: set first
					}
					ok = false
				}
				return ok
			})
			return ok
		case '[':
			ok := true
			eachElement(v, func(elem []byte) bool {
				ok = walk(elem, idKey)
				return ok
			})
			return ok
		}
		return true
	}
	if !walk(raw, false) {
		return untrusted("the reply's %q is longer than any ID (%d characters)", bad, maxCB58IDLen)
	}
	return nil
}

// decodeResult decodes a result into out after checkReplyIDs.
func decodeResult(raw json.RawMessage, out any) error {
	if err := checkReplyIDs(raw, out); err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}
