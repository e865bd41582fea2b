package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/mempool"
	"github.com/luxfi/session/vm/tx"
)

// TestErrorCodes drives every error code through the typed client.
func TestErrorCodes(t *testing.T) {
	e := newEnvWith(t, envOpts{cfg: map[string]any{"maxChannels": 1, "maxMessages": 2}})
	ctx := context.Background()
	c := e.client
	alice, bob, carol := e.alice, e.bob, e.carol
	dave := identity(t, 3) // not registered
	chainID := e.vm.ChainID()
	sess := e.session(alice, bob)
	ch := e.channel(alice, "room")
	random := ids.GenerateTestID()

	signNonce := func(id *crypto.Identity, nonce uint64, p tx.Payload) []byte {
		t.Helper()
		x, err := tx.Sign(id, chainID, nonce, p)
		if err != nil {
			t.Fatal(err)
		}
		return x.Bytes()
	}
	call := func(method string, params any) error {
		return c.Call(ctx, method, params, nil)
	}

	t.Run("invalid params", func(t *testing.T) {
		for _, tc := range []struct {
			method string
			params any
		}{
			{"getIdentity", map[string]any{}},
			{"getIdentity", map[string]any{"sessionId": "07abc"}},
			{"getIdentity", map[string]any{"sessionId": strings.ToUpper(alice.SessionID)}},
			{"getIdentity", map[string]any{"sessionId": 7}},
			{"getIdentity", map[string]any{"sessionID": alice.SessionID}}, // unknown field (case)
			{"getSession", map[string]any{"session": "not-cb58!"}},
			{"getSession", map[string]any{"session": ""}},
			{"getTxStatus", map[string]any{"txID": "xyz"}},
			{"getMessages", map[string]any{"session": sess.String(), "limit": MaxPageSize + 1}},
			{"getMessages", map[string]any{"session": sess.String(), "limit": -1}},
			{"getMessages", map[string]any{"session": sess.String(), "after": -1}},
			{"getMessages", map[string]any{"session": sess.String(), "after": "1"}},
			{"getMessages", map[string]any{"session": sess.String(), "after": 1.5}},
			{"getMessages", map[string]any{"session": sess.String(), "channel": ch.String()}},
			{"getMessages", map[string]any{}},
			{"getInbox", map[string]any{"sessionId": alice.SessionID, "limit": "ten"}},
			{"getChannel", map[string]any{"channel": ch.String(), "membersAfter": "nope"}},
			{"getChannel", map[string]any{"channel": ch.String(), "membersLimit": 100000}},
			{"isChannelMember", map[string]any{"channel": ch.String()}},
			{"status", map[string]any{"verbose": true}},
			{"issueTx", map[string]any{}},
			{"issueTx", map[string]any{"tx": "%%%not base64"}},
			{"issueTx", map[string]any{"tx": 12}},
			{"sendMessage", TxArgs{Tx: signNonce(bob, 0, &tx.CloseSession{Session: sess})}}, // wrong type
			{"registerIdentity", TxArgs{Tx: signNonce(bob, 0, &tx.JoinChannel{Channel: ch})}},
			{"getNonce", []any{1, 2}},
		} {
			err := call(tc.method, tc.params)
			t.Logf("%s %v: %v", tc.method, tc.params, err)
			mustCode(t, err, CodeInvalidParams)
			if !IsInvalidParams(err) || !errors.Is(err, ErrInvalidParams) {
				t.Fatal("helpers disagree")
			}
		}
	})

	t.Run("protocol", func(t *testing.T) {
		mustCode(t, call("nope", nil), CodeMethodNotFound)
		mustCode(t, call("Status", nil), CodeMethodNotFound)
		mustCode(t, call("status", "not an object"), CodeInvalidRequest)
	})

	t.Run("unknown identity", func(t *testing.T) {
		_, err := c.Identity(ctx, dave.SessionID)
		mustCode(t, err, CodeUnknownIdentity)
		if !IsNotFound(err) || !errors.Is(err, ErrUnknownIdentity) {
			t.Fatal("helpers disagree")
		}
		_, err = c.Inbox(ctx, dave.SessionID, 0, 0)
		mustCode(t, err, CodeUnknownIdentity)
		_, err = c.Send(ctx, dave, sess, []byte("x")) // unregistered author
		mustCode(t, err, CodeUnknownIdentity)
		_, err = c.CreateSession(ctx, alice, dave.SessionID) // unregistered participant
		mustCode(t, err, CodeUnknownIdentity)
		_, err = c.PublicIdentity(ctx, dave.SessionID)
		mustCode(t, err, CodeUnknownIdentity)
	})

	t.Run("unknown session", func(t *testing.T) {
		_, err := c.Session(ctx, random)
		mustCode(t, err, CodeUnknownSession)
		_, err = c.Messages(ctx, random, 0, 0)
		mustCode(t, err, CodeUnknownSession)
		_, err = c.Send(ctx, alice, random, []byte("x"))
		mustCode(t, err, CodeUnknownSession)
		_, err = c.SendSealed(ctx, alice, random, []byte("x"))
		mustCode(t, err, CodeUnknownSession)
		if !IsNotFound(err) {
			t.Fatal("IsNotFound")
		}
	})

	t.Run("unknown channel", func(t *testing.T) {
		_, err := c.Channel(ctx, random, "", 0)
		mustCode(t, err, CodeUnknownChannel)
		_, err = c.ChannelMessages(ctx, random, 0, 0)
		mustCode(t, err, CodeUnknownChannel)
		_, err = c.IsChannelMember(ctx, random, alice.SessionID)
		mustCode(t, err, CodeUnknownChannel)
		_, err = c.JoinChannel(ctx, bob, random)
		mustCode(t, err, CodeUnknownChannel)
	})

	t.Run("not a participant", func(t *testing.T) {
		_, err := c.Send(ctx, carol, sess, []byte("x"))
		mustCode(t, err, CodeNotParticipant)
		_, err = c.CloseSession(ctx, carol, sess)
		mustCode(t, err, CodeNotParticipant)
		_, err = c.Post(ctx, bob, ch, []byte("x"))
		mustCode(t, err, CodeNotParticipant)
		_, err = c.LeaveChannel(ctx, bob, ch)
		mustCode(t, err, CodeNotParticipant)
	})

	t.Run("too large", func(t *testing.T) {
		_, err := c.Send(ctx, alice, sess, make([]byte, config.MaxCiphertextSize+1))
		mustCode(t, err, CodeTooLarge)
		_, err = c.CreateSessionWithMetadata(ctx, alice, make([]byte, config.MaxMetadataSize+1), bob.SessionID)
		mustCode(t, err, CodeTooLarge)
		// A transaction over config.MaxTxSize (it still fits the body).
		err = call("issueTx", TxArgs{Tx: make([]byte, config.MaxTxSize+1)})
		mustCode(t, err, CodeTooLarge)
	})

	t.Run("bad signature", func(t *testing.T) {
		u := tx.Unsigned{ChainID: chainID, Author: mustSID(t, alice), Nonce: 2, Payload: &tx.SendMessage{Session: sess, Ciphertext: []byte("x")}}
		forged, err := u.Sign(bob) // signed by the wrong key
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.SendMessageTx(ctx, forged.Bytes())
		mustCode(t, err, CodeBadSignature)
		other, _ := tx.Sign(alice, ids.GenerateTestID(), 2, &tx.SendMessage{Session: sess, Ciphertext: []byte("x")})
		_, err = c.SendMessageTx(ctx, other.Bytes())
		mustCode(t, err, CodeBadSignature)
	})

	t.Run("bad nonce", func(t *testing.T) {
		n, _ := c.Nonce(ctx, bob.SessionID)
		_, err := c.SendMessageTx(ctx, signNonce(bob, n+5, &tx.SendMessage{Session: sess, Ciphertext: []byte("x")}))
		mustCode(t, err, CodeBadNonce)
		_, err = c.SendMessageTx(ctx, signNonce(alice, 0, &tx.SendMessage{Session: sess, Ciphertext: []byte("x")}))
		mustCode(t, err, CodeBadNonce)
	})

	t.Run("duplicate transaction", func(t *testing.T) {
		n, _ := c.Nonce(ctx, bob.SessionID)
		b := signNonce(bob, n, &tx.SendMessage{Session: sess, Ciphertext: []byte("once")})
		if _, err := c.SendMessageTx(ctx, b); err != nil {
			t.Fatal(err)
		}
		_, err := c.SendMessageTx(ctx, b) // pending
		mustCode(t, err, CodeDuplicateTx)
		e.accept()
		_, err = c.IssueTx(ctx, b) // accepted
		mustCode(t, err, CodeDuplicateTx)
	})

	t.Run("limit reached", func(t *testing.T) {
		// maxMessages is 2; one was sent above.
		if _, err := c.Send(ctx, alice, sess, []byte("2")); err != nil {
			t.Fatal(err)
		}
		_, err := c.Send(ctx, alice, sess, []byte("3"))
		mustCode(t, err, CodeLimitReached)
		_, err = c.CreateChannel(ctx, alice, "second") // maxChannels is 1 per identity
		mustCode(t, err, CodeLimitReached)
		e.accept()
	})

	t.Run("session closed", func(t *testing.T) {
		s2 := e.session(bob, carol)
		if _, err := c.CloseSession(ctx, carol, s2); err != nil {
			t.Fatal(err)
		}
		e.accept()
		_, err := c.Send(ctx, bob, s2, []byte("x"))
		mustCode(t, err, CodeSessionClosed)
	})

	t.Run("already exists", func(t *testing.T) {
		_, err := c.Register(ctx, alice)
		mustCode(t, err, CodeAlreadyExists)
		if _, err := c.JoinChannel(ctx, carol, ch); err != nil {
			t.Fatal(err)
		}
		_, err = c.JoinChannel(ctx, carol, ch)
		mustCode(t, err, CodeAlreadyExists)
		e.accept()
	})

	t.Run("invalid transaction", func(t *testing.T) {
		err := call("issueTx", TxArgs{Tx: []byte("short")})
		mustCode(t, err, CodeInvalidTx)
		_, err = c.CreateChannel(ctx, bob, "") // invalid name
		mustCode(t, err, CodeInvalidTx)
		_, err = c.LeaveChannel(ctx, alice, ch) // the owner cannot leave
		mustCode(t, err, CodeInvalidTx)
		_, err = c.CreateSession(ctx, alice) // no participants
		mustCode(t, err, CodeInvalidTx)
		if !IsRefused(err) {
			t.Fatal("IsRefused")
		}
	})

	t.Run("unavailable", func(t *testing.T) {
		e2 := newEnv(t)
		if err := e2.vm.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := e2.client.Status(ctx)
		mustCode(t, err, CodeUnavailable)
		_, err = e2.client.Health(ctx)
		mustCode(t, err, CodeUnavailable)
		if !IsRetryable(err) {
			t.Fatal("IsRetryable")
		}
	})
}

// TestMempoolFull: a node with a one-transaction mempool, and one with a
// per-author limit of one.
func TestMempoolFull(t *testing.T) {
	ctx := context.Background()
	e := newEnvWith(t, envOpts{nodeConfig: `{"mempoolTxs": 1}`})
	if _, err := e.client.CreateChannel(ctx, e.alice, "a"); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.CreateChannel(ctx, e.bob, "b")
	mustCode(t, err, CodeMempoolFull)
	if !IsRetryable(err) {
		t.Fatal("IsRetryable")
	}

	e = newEnvWith(t, envOpts{nodeConfig: `{"maxPendingPerAuthor": 1}`})
	if _, err := e.client.CreateChannel(ctx, e.alice, "a"); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.CreateChannel(ctx, e.alice, "b")
	mustCode(t, err, CodeMempoolFull)
	if _, err := e.client.CreateChannel(ctx, e.bob, "b"); err != nil {
		t.Fatal(err)
	}
}

// TestToError pins the mapping of every sentinel.
func TestToError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want ErrorCode
	}{
		{vm.ErrNotInitialized, CodeUnavailable},
		{vm.ErrShutdown, CodeUnavailable},
		{vm.ErrDiskFull, CodeDiskFull},
		{mempool.ErrFull, CodeMempoolFull},
		{mempool.ErrAuthorLimit, CodeMempoolFull},
		{mempool.ErrDuplicate, CodeDuplicateTx},
		{fmt.Errorf("%w: %w", vm.ErrAlreadyAccepted, tx.ErrReplayedNonce), CodeDuplicateTx},
		{tx.ErrOversize, CodeTooLarge},
		{tx.ErrCiphertextTooLarge, CodeTooLarge},
		{tx.ErrMetadataTooLarge, CodeTooLarge},
		{tx.ErrBadSignature, CodeBadSignature},
		{tx.ErrWrongChainID, CodeBadSignature},
		{tx.ErrReplayedNonce, CodeBadNonce},
		{tx.ErrSkippedNonce, CodeBadNonce},
		{tx.ErrUnregisteredAuthor, CodeUnknownIdentity},
		{tx.ErrUnknownParticipant, CodeUnknownIdentity},
		{tx.ErrUnknownSession, CodeUnknownSession},
		{tx.ErrUnknownChannel, CodeUnknownChannel},
		{tx.ErrNotParticipant, CodeNotParticipant},
		{tx.ErrNotMember, CodeNotParticipant},
		{tx.ErrSessionClosed, CodeSessionClosed},
		{tx.ErrSessionExpired, CodeSessionClosed},
		{tx.ErrMaxMessages, CodeLimitReached},
		{tx.ErrMaxChannels, CodeLimitReached},
		{tx.ErrChannelFull, CodeLimitReached},
		{tx.ErrDuplicateRegistration, CodeAlreadyExists},
		{tx.ErrSessionAlreadyExisting, CodeAlreadyExists},
		{tx.ErrChannelAlreadyExist, CodeAlreadyExists},
		{tx.ErrAlreadyMember, CodeAlreadyExists},
		{tx.ErrMalformed, CodeInvalidTx},
		{tx.ErrUnknownType, CodeInvalidTx},
		{tx.ErrUnsupportedVersion, CodeInvalidTx},
		{tx.ErrInvalidSessionID, CodeInvalidTx},
		{tx.ErrInvalidPublicKey, CodeInvalidTx},
		{tx.ErrSessionIDMismatch, CodeInvalidTx},
		{tx.ErrNoParticipants, CodeInvalidTx},
		{tx.ErrTooManyParticipants, CodeInvalidTx},
		{tx.ErrDuplicateParticipant, CodeInvalidTx},
		{tx.ErrEmptyCiphertext, CodeInvalidTx},
		{tx.ErrInvalidChannelName, CodeInvalidTx},
		{tx.ErrOwnerCannotLeave, CodeInvalidTx},
		{tx.ErrInsufficientWork, CodeInvalidTx},
		{tx.ErrInvalidJoinPolicy, CodeInvalidTx},
		{tx.ErrInvalidPrekey, CodeInvalidTx},
		{tx.ErrPrekeyExpiry, CodeInvalidTx},
		{tx.ErrDuplicateClaim, CodeInvalidTx},
		{tx.ErrRateLimited, CodeRateLimited},
		{tx.ErrBlocked, CodeForbidden},
		{tx.ErrBanned, CodeForbidden},
		{tx.ErrNotInvited, CodeForbidden},
		{tx.ErrNotOwner, CodeForbidden},
		{tx.ErrNotModerator, CodeForbidden},
		{tx.ErrNotPostAuthor, CodeForbidden},
		{tx.ErrTargetIsOwner, CodeForbidden},
		{tx.ErrTargetIsModerator, CodeForbidden},
		{tx.ErrUnknownPrekey, CodePrekeyGone},
		{tx.ErrPrekeyClaimed, CodePrekeyGone},
		{tx.ErrPrekeyReserved, CodePrekeyGone},
		{tx.ErrUnknownMember, CodeUnknownIdentity},
		{tx.ErrParticipantLeft, CodeNotParticipant},
		{tx.ErrSessionNotAccepted, CodeNotParticipant},
		{tx.ErrMaxContacts, CodeLimitReached},
		{tx.ErrTooManyInvites, CodeLimitReached},
		{tx.ErrTooManyPrekeys, CodeLimitReached},
		{tx.ErrSessionAlreadyAccepted, CodeAlreadyExists},
		{tx.ErrAlreadyInvited, CodeAlreadyExists},
		{tx.ErrAlreadyBanned, CodeAlreadyExists},
		{tx.ErrAlreadyModerator, CodeAlreadyExists},
		{state.ErrCorrupt, CodeInternal},
		{errors.New("disk on fire"), CodeInternal},
		{errorf(CodeUnknownSession, "x"), CodeUnknownSession},
	} {
		got := toError(fmt.Errorf("wrapped: %w", tc.err))
		if got.Code != tc.want {
			t.Errorf("%v: code %d (%s), want %d (%s)", tc.err, got.Code, got.Code, tc.want, tc.want)
		}
		if got.Message == "" {
			t.Errorf("%v: empty message", tc.err)
		}
	}
	// Every code has a name, and the docs table (TestDocs) lists it.
	for code := range codeNames {
		if strings.HasPrefix(code.String(), "error ") {
			t.Errorf("code %d has no name", code)
		}
	}
}

// fakeAPI is a vm.API whose methods fail or panic as told.
type fakeAPI struct {
	vm.API // nil: unimplemented methods panic
	err    error
}

func (f *fakeAPI) Status() (vm.Status, error) {
	if f.err != nil {
		return vm.Status{}, f.err
	}
	panic("status exploded")
}

func (f *fakeAPI) ChainID() ids.ID { return ids.Empty }

// TestInternalErrors: a failing backend gives -32603, a panicking one a
// -32603 with HTTP 200, never a 500 or a dropped connection.
func TestInternalErrors(t *testing.T) {
	h, err := NewHandler(&fakeAPI{err: errors.New("database closed unexpectedly")})
	if err != nil {
		t.Fatal(err)
	}
	r := post(t, h, http.MethodPost, "application/json", []byte(`{"jsonrpc":"2.0","id":1,"method":"session.status"}`))
	if r.Error == nil || r.Error.Code != CodeInternal || !strings.Contains(r.Error.Message, "database closed") || r.Status != 200 {
		t.Fatalf("%+v %+v", r, r.Error)
	}
	// health falls back to status when the API has no HealthCheck.
	r = post(t, h, http.MethodPost, "application/json", []byte(`{"jsonrpc":"2.0","id":1,"method":"session.health"}`))
	if r.Error == nil || r.Error.Code != CodeInternal {
		t.Fatalf("%+v", r)
	}

	h, err = NewHandler(&fakeAPI{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Methods {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":"x","method":"session.%s","params":{}}`, m)
		r := post(t, h, http.MethodPost, "application/json", []byte(body))
		if r.Error == nil {
			t.Fatalf("%s: no error from a nil backend", m)
		}
		if r.Error.Code != CodeInternal && r.Error.Code != CodeInvalidParams {
			t.Fatalf("%s: %+v", m, r.Error)
		}
		if r.Error.Code == CodeInternal && (r.Error.Message != "internal error" || string(r.ID) != `"x"`) {
			t.Fatalf("%s: panic answered %+v id %s", m, r.Error, r.ID)
		}
	}

	// Through a real server and the client: the panic is an *Error.
	srv := httptest.NewServer(h)
	defer srv.Close()
	_, err = NewClient(srv.URL).Status(context.Background())
	mustCode(t, err, CodeInternal)
}

// TestClientTransportErrors: what is not a JSON-RPC answer is not an *Error.
func TestClientTransportErrors(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, err := NewClient(srv.URL).Status(ctx)
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("502: %v", err)
	}
	if _, ok := CodeOf(err); ok {
		t.Fatal("a 502 is not an *Error")
	}
	url := srv.URL
	srv.Close()
	_, err = NewClient(url).Status(ctx)
	if err == nil {
		t.Fatal("closed server answered")
	}
	if _, ok := CodeOf(err); ok || IsNotFound(err) || IsRetryable(err) {
		t.Fatal("a transport error is not an *Error")
	}
	// A node that returns keys which do not match is caught.
	e := newEnv(t)
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := new(bytes.Buffer)
		_, _ = body.ReadFrom(r.Body)
		// Answer every getIdentity with bob's keys.
		req := strings.Replace(body.String(), e.alice.SessionID, e.bob.SessionID, 1)
		r2 := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(req))
		r2.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, r2)
		out := strings.ReplaceAll(rec.Body.String(), e.bob.SessionID, e.alice.SessionID)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(out))
	}))
	defer evil.Close()
	if _, err := NewClient(evil.URL).PublicIdentity(ctx, e.alice.SessionID); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("substituted keys: %v", err)
	}
}
