package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/service"
)

// inboxResponse is a getInbox response as the node writes it (its
// encoder writes what encoding/json writes: service's
// TestEncodersMatchJSON).
func inboxResponse(t *testing.T, r *service.MessagesReply, id string) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(`{"jsonrpc":"2.0","result":` + string(b) + `,"id":` + id + "}\n")
}

// TestParseInbox: the watcher's reader of getInbox pages gives what
// encoding/json gives, and declines what it does not know.
func TestParseInbox(t *testing.T) {
	var msgs []service.Message
	for i := range 5 {
		m := service.Message{Target: ids.ID{byte(i)}, Seq: uint64(i + 1), Author: fmt.Sprintf("07%064x", i),
			TxID: ids.ID{0xaa, byte(i)}, Height: 9, Position: uint64(100 + i), Timestamp: 1_767_225_600_000, Ciphertext: []byte(strings.Repeat("}]x", i))}
		if i == 3 {
			m.Ciphertext = nil
		}
		msgs = append(msgs, m)
	}
	for _, c := range []struct {
		r  service.MessagesReply
		id string
	}{
		{service.MessagesReply{Messages: msgs, Next: 104, More: true}, "1"},
		{service.MessagesReply{Messages: msgs[:1], Next: 100}, `"x"`},
		{service.MessagesReply{Messages: []service.Message{}, Next: 7}, "null"},
		{service.MessagesReply{Next: 0}, "12"},
	} {
		data := inboxResponse(t, &c.r, c.id)
		got, ok := parseInbox(data)
		if !ok {
			t.Fatalf("declined %s", data)
		}
		var want struct {
			Result inboxPage `json:"result"`
		}
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if len(want.Result.Messages) == 0 {
			want.Result.Messages = nil
		}
		if !reflect.DeepEqual(*got, want.Result) {
			t.Fatalf("%s:\nparseInbox %+v\njson       %+v", data, *got, want.Result)
		}
	}
	good := string(inboxResponse(t, &service.MessagesReply{Messages: msgs[:2], Next: 101}, "1"))
	for _, bad := range []string{
		`{"jsonrpc":"2.0","error":{"code":-32001,"message":"x"},"id":1}`,
		strings.Replace(good, `"author"`, `"authorX"`, 1),
		strings.Replace(good, `,"txID"`, `,"seq2":1,"txID"`, 1),
		strings.Replace(good, `,"next"`, `,"nxt"`, 1),
		strings.Replace(good, `"more":false`, `"more":0`, 1),
		strings.Replace(good, `"author":"07`, `"author":"\u0030`, 1),
		good[:len(good)-3],
		good + "{}",
	} {
		if page, ok := parseInbox([]byte(bad)); ok {
			t.Errorf("took %s as %+v", bad, page)
		}
	}
}

func TestAllAdmitted(t *testing.T) {
	ok := `[{"jsonrpc":"2.0","result":{"txID":"x"},"id":1},{"jsonrpc":"2.0","result":{"txID":"y"},"id":2}]` + "\n"
	if !allAdmitted([]byte(ok), 2) {
		t.Fatal("two results not admitted")
	}
	for _, bad := range []string{
		ok[:len(ok)-2],
		strings.Replace(ok, `"result":{"txID":"y"}`, `"error":{"code":-32006,"message":"mempool full"}`, 1),
		`[{"jsonrpc":"2.0","result":{"txID":"x"},"id":1}]`,
		`{"jsonrpc":"2.0","error":{"code":-32015,"message":"busy"},"id":null}`,
	} {
		if allAdmitted([]byte(bad), 2) {
			t.Errorf("admitted: %s", bad)
		}
	}
}
