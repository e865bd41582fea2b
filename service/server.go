// Package service is the JSON-RPC 2.0 API of SessionVM and its typed Go
// client.
//
// The server (NewHandler) is a github.com/gorilla/rpc/v2 server in the
// "session" namespace, built only on the vm.API interface: it never reaches
// into the VM. A VM gets it with vm.WithHandler(service.NewHandler), and
// CreateHandlers mounts it at "/rpc", in the plugin and in the standalone
// node alike. docs/api.md lists every method, the encodings and the error
// codes; the short version:
//
//   - Methods are "session.<lowerCamel>" (session.getMessages).
//   - Writes take a transaction the client signed ({"tx": "<base64>"}): the
//     node never holds secret keys. Each typed write refuses a transaction of
//     another type (invalid params); issueTx takes any type.
//   - []byte fields are standard base64; Session IDs are 66-character hex;
//     transaction, block, session and channel IDs are CB58 (ids.ID).
//   - Errors carry the stable codes of errors.go.
//   - One request object per POST (no batches, no notifications), at most
//     MaxBodySize bytes, Content-Type application/json (or none).
//
// The Client (NewClient) has a method per RPC method and helpers that sign
// locally (Register, CreateSession, Send, ...) and wait for acceptance
// (WaitAccepted).
package service

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/rpc/v2"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
)

// Limits of the API.
const (
	// MaxBodySize bounds a request body. The largest transaction
	// (config.MaxTxSize, 80 KiB) is about 107 KiB in base64.
	MaxBodySize = 1 << 20
	// DefaultPageSize is the page size when a request gives no limit.
	DefaultPageSize = 100
	// MaxPageSize bounds every limit parameter.
	MaxPageSize = vm.MaxPageSize
)

// Namespace is the service name of every method.
const Namespace = "session"

// HealthChecker is implemented by backends that report their health
// (*vm.VM does). session.health uses it when the vm.API given to NewHandler
// implements it, and falls back to Status otherwise.
type HealthChecker interface {
	HealthCheck(context.Context) (interface{}, error)
}

// Methods lists the wire names of every method, in documentation order.
var Methods = []string{
	"health", "status", "getConfig",
	"issueTx", "getTxStatus", "getNonce",
	"registerIdentity", "getIdentity",
	"createSession", "getSession", "closeSession",
	"sendMessage", "getMessages", "getInbox",
	"createChannel", "joinChannel", "leaveChannel", "postChannel", "getChannel", "isChannelMember",
}

// NewHandler returns the JSON-RPC handler over api. It has the signature
// vm.WithHandler wants.
func NewHandler(api vm.API) (http.Handler, error) {
	if api == nil || (reflect.ValueOf(api).Kind() == reflect.Pointer && reflect.ValueOf(api).IsNil()) {
		return nil, errors.New("service: nil API")
	}
	srv := rpc.NewServer()
	// One codec: gorilla also uses it when a request has no Content-Type.
	srv.RegisterCodec(codec{}, "application/json")
	if err := srv.RegisterService(&rpcService{api: api}, Namespace); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	for _, m := range Methods {
		if !srv.HasMethod(Namespace + "." + goName(m)) {
			return nil, fmt.Errorf("service: method %s is not implemented", m)
		}
	}
	return &handler{rpc: srv}, nil
}

var methodSet = func() map[string]string {
	m := make(map[string]string, len(Methods))
	for _, name := range Methods {
		m[Namespace+"."+name] = Namespace + "." + goName(name)
	}
	return m
}()

func goName(wire string) string {
	r, n := utf8.DecodeRuneInString(wire)
	return string(unicode.ToUpper(r)) + wire[n:]
}

// handler validates the HTTP request and the JSON-RPC envelope before
// gorilla/rpc dispatches it, so every failure gets a JSON-RPC error body
// (gorilla answers some in text/plain), and recovers from panics.
//
// HTTP status: 200 for every response to a well-formed request object,
// errors included; 405 (not POST), 415 (Content-Type), 413 (body too large)
// and 400 (not a single JSON-RPC 2.0 request object) otherwise. Never 500.
type handler struct{ rpc *rpc.Server }

type ctxKey struct{}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tw := &trackingWriter{ResponseWriter: w}
	env := &envelope{id: nullID}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { //nolint:errorlint // sentinel value, as net/http compares it
				panic(p)
			}
			if !tw.wrote {
				writeResponse(tw, http.StatusOK, env.id, nil, &Error{Code: CodeInternal, Message: "internal error"})
			}
		}
	}()

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeResponse(tw, http.StatusMethodNotAllowed, nullID, nil,
			errorf(CodeInvalidRequest, "HTTP method %s not allowed: POST a JSON-RPC 2.0 request", r.Method))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeResponse(tw, http.StatusUnsupportedMediaType, nullID, nil,
				errorf(CodeInvalidRequest, "Content-Type must be application/json, got %.64q", ct))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeResponse(tw, http.StatusRequestEntityTooLarge, nullID, nil,
				errorf(CodeTooLarge, "request body exceeds %d bytes", MaxBodySize))
			return
		}
		writeResponse(tw, http.StatusBadRequest, nullID, nil, errorf(CodeParseError, "reading the request body: %v", err))
		return
	}
	if e := env.parse(body); e != nil {
		writeResponse(tw, http.StatusBadRequest, env.id, nil, e)
		return
	}
	r2 := r.WithContext(context.WithValue(r.Context(), ctxKey{}, env))
	r2.Header = r.Header.Clone()
	r2.Header.Set("Content-Type", "application/json")
	r2.Body = http.NoBody
	h.rpc.ServeHTTP(tw, r2)
	if !tw.wrote { // unreachable with this codec; never leave a request unanswered
		writeResponse(tw, http.StatusOK, env.id, nil, &Error{Code: CodeInternal, Message: "internal error: no response"})
	}
}

type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

var nullID = json.RawMessage("null")

// envelope is a parsed request object.
type envelope struct {
	id     json.RawMessage
	method string
	params json.RawMessage
}

func (e *envelope) parse(body []byte) *Error {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return errorf(CodeParseError, "empty request body")
	}
	// For an object, json.Unmarshal below validates the whole body before
	// decoding it: no separate json.Valid pass on the common path.
	if b[0] != '{' {
		if !json.Valid(b) {
			return errorf(CodeParseError, "request body is not valid JSON")
		}
		if b[0] == '[' {
			return errorf(CodeInvalidRequest, "batch requests are not supported: send one request object per HTTP request")
		}
		return errorf(CodeInvalidRequest, "the request must be a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) || !json.Valid(b) {
			return errorf(CodeParseError, "request body is not valid JSON")
		}
		return errorf(CodeInvalidRequest, "the request must be a JSON object")
	}
	id, ok := raw["id"]
	if !ok {
		return errorf(CodeInvalidRequest, "missing id: notifications are not supported")
	}
	switch c := id[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9', string(id) == "null":
		e.id = id
	default:
		return errorf(CodeInvalidRequest, "id must be a string, a number or null")
	}
	var version string
	if v, ok := raw["jsonrpc"]; !ok || json.Unmarshal(v, &version) != nil || version != "2.0" {
		return errorf(CodeInvalidRequest, `"jsonrpc" must be "2.0"`)
	}
	if m, ok := raw["method"]; !ok || json.Unmarshal(m, &e.method) != nil || e.method == "" {
		return errorf(CodeInvalidRequest, `"method" must be a non-empty string`)
	}
	if p, ok := raw["params"]; ok && string(p) != "null" {
		if p[0] != '{' && p[0] != '[' {
			return errorf(CodeInvalidRequest, `"params" must be an object`)
		}
		e.params = p
	}
	return nil
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
	ID      json.RawMessage `json:"id"`
}

func writeResponse(w http.ResponseWriter, status int, id json.RawMessage, result any, rpcErr *Error) {
	res := response{JSONRPC: "2.0", Error: rpcErr, ID: id}
	var out []byte
	var err error
	if rpcErr == nil {
		b, merr := json.Marshal(result)
		if merr != nil {
			res.Error = errorf(CodeInternal, "internal error: encoding the result: %v", merr)
		} else {
			// Assembled by hand: marshaling res would validate and compact
			// the result (and id) once more. Both are valid JSON: b from
			// json.Marshal, id from the parsed request.
			out = make([]byte, 0, len(b)+len(id)+40)
			out = append(out, `{"jsonrpc":"2.0","result":`...)
			out = append(out, b...)
			out = append(out, `,"id":`...)
			out = append(out, id...)
			out = append(out, '}')
		}
	}
	if out == nil {
		out, err = json.Marshal(res)
	}
	if err != nil { // only id could fail, and it was validated JSON
		res.ID = nullID
		out, _ = json.Marshal(res)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(out, '\n'))
}

// codec is the gorilla/rpc codec: JSON-RPC 2.0 over the envelope the
// handler parsed.
type codec struct{}

func (codec) NewRequest(r *http.Request) rpc.CodecRequest {
	env, _ := r.Context().Value(ctxKey{}).(*envelope)
	if env == nil {
		env = &envelope{id: nullID}
	}
	return &codecRequest{env: env}
}

type codecRequest struct{ env *envelope }

func (c *codecRequest) Method() (string, error) {
	m, ok := methodSet[c.env.method]
	if !ok {
		return "", errorf(CodeMethodNotFound, "method %.80q not found (methods are %s.<name>, e.g. %s.status)", c.env.method, Namespace, Namespace)
	}
	return m, nil
}

func (c *codecRequest) ReadRequest(args interface{}) error { return decodeParams(c.env.params, args) }

func (c *codecRequest) WriteResponse(w http.ResponseWriter, reply interface{}) {
	writeResponse(w, http.StatusOK, c.env.id, reply, nil)
}

// WriteError answers with HTTP 200 whatever status gorilla suggests: the
// request was well formed, and the JSON-RPC error says what went wrong.
func (c *codecRequest) WriteError(w http.ResponseWriter, _ int, err error) {
	writeResponse(w, http.StatusOK, c.env.id, nil, toError(err))
}

// decodeParams decodes params strictly: an object (or an array holding one
// object, as some JSON-RPC clients send), unknown fields refused.
func decodeParams(raw json.RawMessage, args any) error {
	if a, ok := args.(*TxArgs); ok {
		if tx, ok := fastTxParams(raw); ok {
			a.Tx = tx
			return nil
		}
	}
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	if raw[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(raw, &arr); err != nil {
			return paramsError(err)
		}
		switch {
		case len(arr) == 0:
			raw = json.RawMessage("{}")
		case len(arr) == 1 && len(arr[0]) > 0 && arr[0][0] == '{':
			raw = arr[0]
		default:
			return errorf(CodeInvalidParams, "invalid params: params must be an object (by name)")
		}
	}
	// encoding/json matches field names case-insensitively; JSON-RPC
	// by-name params match exactly.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return paramsError(err)
	}
	known := fieldNames(reflect.TypeOf(args))
	for name := range fields {
		if !known[name] {
			return errorf(CodeInvalidParams, "invalid params: unknown field %.64q", name)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(args); err != nil {
		return paramsError(err)
	}
	return nil
}

// fastTxParams decodes params of exactly the form {"tx":"<standard base64>"}
// (white space allowed between tokens), the shape of every write method, in
// one pass: the general path scans the ~5 KB string several times. Anything
// else, including escapes in the string or invalid base64, returns false and
// goes through the general path, which gives the precise error.
func fastTxParams(raw []byte) ([]byte, bool) {
	p := skipSpace(raw)
	for _, tok := range []string{"{", `"tx"`, ":", `"`} {
		if !bytes.HasPrefix(p, []byte(tok)) {
			return nil, false
		}
		p = p[len(tok):]
		if tok != `"` {
			p = skipSpace(p)
		}
	}
	end := bytes.IndexByte(p, '"')
	if end < 0 {
		return nil, false
	}
	enc, rest := p[:end], bytes.TrimRight(skipSpace(p[end+1:]), " \t\r\n")
	if len(rest) != 1 || rest[0] != '}' {
		return nil, false
	}
	// Only the base64 alphabet: no JSON escapes, and no raw control
	// characters (invalid in a JSON string, yet skipped by the decoder).
	for _, c := range enc {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, false
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	n, err := base64.StdEncoding.Decode(out, enc)
	if err != nil {
		return nil, false
	}
	return out[:n], true
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

var fieldNameCache sync.Map // reflect.Type → map[string]bool

// fieldNames returns the JSON names of the fields of the struct *T.
func fieldNames(t reflect.Type) map[string]bool {
	if v, ok := fieldNameCache.Load(t); ok {
		return v.(map[string]bool)
	}
	names := make(map[string]bool)
	if t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		st := t.Elem()
		for i := 0; i < st.NumField(); i++ {
			f := st.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			names[name] = true
		}
	}
	fieldNameCache.Store(t, names)
	return names
}

func paramsError(err error) *Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "params"
		}
		return errorf(CodeInvalidParams, "invalid params: %s must be %s, not %s", field, jsonTypeName(te.Type), te.Value)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if strings.Contains(msg, "base64") {
		msg += " (binary fields are standard base64)"
	}
	return errorf(CodeInvalidParams, "invalid params: %s", msg)
}

func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "a " + t.Kind().String()
	}
}

// rpcService holds the methods; gorilla/rpc calls them by reflection.
type rpcService struct{ api vm.API }

func parseID(field, s string) (ids.ID, error) {
	if s == "" {
		return ids.Empty, errorf(CodeInvalidParams, "invalid params: %s is required", field)
	}
	id, err := ids.FromString(s)
	if err != nil {
		return ids.Empty, errorf(CodeInvalidParams, "invalid params: %s is not an ID in CB58 form: %v", field, err)
	}
	return id, nil
}

func parseSessionID(field, s string) (crypto.SessionID, error) {
	if s == "" {
		return crypto.SessionID{}, errorf(CodeInvalidParams, "invalid params: %s is required", field)
	}
	id, err := crypto.ParseSessionID(s)
	if err != nil {
		return crypto.SessionID{}, errorf(CodeInvalidParams, "invalid params: %s: %v", field, err)
	}
	return id, nil
}

func pageLimit(field string, n int) (int, error) {
	if n < 0 || n > MaxPageSize {
		return 0, errorf(CodeInvalidParams, "invalid params: %s must be in [0, %d] (0: %d), got %d", field, MaxPageSize, DefaultPageSize, n)
	}
	if n == 0 {
		return DefaultPageSize, nil
	}
	return n, nil
}

// submit admits a signed transaction of type want (0: any).
func (s *rpcService) submit(want tx.Type, raw []byte, reply *TxReply) error {
	if len(raw) == 0 {
		return errorf(CodeInvalidParams, "invalid params: tx is required (the signed transaction bytes, base64)")
	}
	t, err := tx.ParseOwned(raw) // raw was decoded for this request
	if err != nil {
		return err
	}
	if want != 0 && t.Type() != want {
		return errorf(CodeInvalidParams, "invalid params: tx is a %s transaction; %s takes %s (issueTx takes any type)", t.Type(), want, want)
	}
	if err := s.api.Issue(t); err != nil {
		return err
	}
	id := t.ID()
	*reply = TxReply{TxID: id, Type: t.Type().String(), Author: t.Author.String(), Nonce: t.Nonce}
	switch t.Payload.(type) {
	case *tx.CreateSession:
		reply.Session = tx.SessionIDFor(t.ChainID, t.Author, t.Nonce)
	case *tx.CreateChannel:
		reply.Channel = tx.ChannelIDFor(t.ChainID, t.Author, t.Nonce)
	}
	return nil
}

// IssueTx is session.issueTx: a signed transaction of any type.
func (s *rpcService) IssueTx(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(0, a.Tx, reply)
}

// RegisterIdentity is session.registerIdentity.
func (s *rpcService) RegisterIdentity(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeRegisterIdentity, a.Tx, reply)
}

// CreateSession is session.createSession.
func (s *rpcService) CreateSession(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeCreateSession, a.Tx, reply)
}

// CloseSession is session.closeSession.
func (s *rpcService) CloseSession(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeCloseSession, a.Tx, reply)
}

// SendMessage is session.sendMessage.
func (s *rpcService) SendMessage(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeSendMessage, a.Tx, reply)
}

// CreateChannel is session.createChannel.
func (s *rpcService) CreateChannel(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeCreateChannel, a.Tx, reply)
}

// JoinChannel is session.joinChannel.
func (s *rpcService) JoinChannel(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeJoinChannel, a.Tx, reply)
}

// LeaveChannel is session.leaveChannel.
func (s *rpcService) LeaveChannel(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypeLeaveChannel, a.Tx, reply)
}

// PostChannel is session.postChannel.
func (s *rpcService) PostChannel(_ *http.Request, a *TxArgs, reply *TxReply) error {
	return s.submit(tx.TypePostChannel, a.Tx, reply)
}

// GetTxStatus is session.getTxStatus.
func (s *rpcService) GetTxStatus(_ *http.Request, a *TxStatusArgs, reply *TxStatusReply) error {
	id, err := parseID("txID", a.TxID)
	if err != nil {
		return err
	}
	st, err := s.api.TxStatus(id)
	if err != nil {
		return err
	}
	*reply = TxStatusReply{TxID: id, Status: st.Status.String(), Reason: st.Reason}
	if st.Status == vm.TxAccepted {
		reply.Height, reply.Index = st.Height, st.Index
	}
	return nil
}

// GetNonce is session.getNonce.
func (s *rpcService) GetNonce(_ *http.Request, a *SessionIDArgs, reply *NonceReply) error {
	id, err := parseSessionID("sessionId", a.SessionID)
	if err != nil {
		return err
	}
	n, err := s.api.NextNonce(id)
	if err != nil {
		return err
	}
	*reply = NonceReply{SessionID: id.String(), Nonce: n}
	return nil
}

// GetIdentity is session.getIdentity.
func (s *rpcService) GetIdentity(_ *http.Request, a *SessionIDArgs, reply *IdentityReply) error {
	id, err := parseSessionID("sessionId", a.SessionID)
	if err != nil {
		return err
	}
	i, err := s.api.Identity(id)
	if errors.Is(err, state.ErrNotFound) {
		return errorf(CodeUnknownIdentity, "unknown identity %s: not registered", id)
	}
	if err != nil {
		return err
	}
	*reply = IdentityReply{
		SessionID:    i.ID.String(),
		KEMPublicKey: i.KEMPublicKey,
		DSAPublicKey: i.DSAPublicKey,
		Height:       i.Height,
		Timestamp:    i.Timestamp,
	}
	return nil
}

func sessionIDs(in []crypto.SessionID) []string {
	out := make([]string, len(in))
	for i, id := range in {
		out[i] = id.String()
	}
	return out
}

func (s *rpcService) getSession(id ids.ID) (*vm.SessionInfo, error) {
	si, err := s.api.Session(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, errorf(CodeUnknownSession, "unknown session %s", id)
	}
	return si, err
}

// GetSession is session.getSession.
func (s *rpcService) GetSession(_ *http.Request, a *SessionArgs, reply *SessionReply) error {
	id, err := parseID("session", a.Session)
	if err != nil {
		return err
	}
	si, err := s.getSession(id)
	if err != nil {
		return err
	}
	*reply = SessionReply{
		Session:      si.ID,
		Creator:      si.Creator.String(),
		Participants: sessionIDs(si.Participants),
		Metadata:     si.Metadata,
		Height:       si.Height,
		CreatedAt:    si.CreatedAt,
		ExpiresAt:    si.ExpiresAt,
		Status:       si.Status.String(),
		LastSeq:      si.LastSeq,
	}
	if reply.Metadata == nil {
		reply.Metadata = []byte{}
	}
	if si.Closed {
		reply.ClosedBy, reply.ClosedAt = si.ClosedBy.String(), si.ClosedAt
	}
	return nil
}

func (s *rpcService) getChannel(id ids.ID) (*state.Channel, error) {
	c, err := s.api.Channel(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, errorf(CodeUnknownChannel, "unknown channel %s", id)
	}
	return c, err
}

// maxPageBytes bounds the ciphertext bytes of one page of messages (about
// 22 MB of base64), so a full page of the largest messages is cut short
// (with more set) rather than answered with 87 MB.
const maxPageBytes = vm.MaxPageBytes

// page fetches up to limit messages (one more when the API allows, to know
// whether more follow), cuts the page at maxPageBytes, and builds the reply.
func page(fetch func(n int) ([]*state.Message, error), limit int, after uint64, cursor func(*state.Message) uint64) (MessagesReply, error) {
	want := min(limit+1, MaxPageSize)
	in, err := fetch(want)
	if err != nil {
		return MessagesReply{}, err
	}
	more := len(in) > limit || (len(in) == limit && want == limit)
	if len(in) > limit {
		in = in[:limit]
	}
	total := 0
	for i, m := range in {
		if total += len(m.Ciphertext); total > maxPageBytes && i > 0 {
			in, more = in[:i], true
			break
		}
	}
	r := MessagesReply{Messages: make([]Message, len(in)), Next: after, More: more}
	for i, m := range in {
		r.Messages[i] = Message{
			Target:     m.Target,
			Seq:        m.Seq,
			Author:     m.Author.String(),
			TxID:       m.TxID,
			Height:     m.Height,
			Position:   m.Position,
			Timestamp:  m.Timestamp,
			Ciphertext: m.Ciphertext,
		}
		r.Next = cursor(m)
	}
	return r, nil
}

// GetMessages is session.getMessages.
func (s *rpcService) GetMessages(_ *http.Request, a *MessagesArgs, reply *MessagesReply) error {
	if (a.Session == "") == (a.Channel == "") {
		return errorf(CodeInvalidParams, "invalid params: give exactly one of session and channel")
	}
	limit, err := pageLimit("limit", a.Limit)
	if err != nil {
		return err
	}
	var target ids.ID
	if a.Session != "" {
		if target, err = parseID("session", a.Session); err != nil {
			return err
		}
		if _, err := s.getSession(target); err != nil {
			return err
		}
	} else {
		if target, err = parseID("channel", a.Channel); err != nil {
			return err
		}
		if _, err := s.getChannel(target); err != nil {
			return err
		}
	}
	*reply, err = page(func(n int) ([]*state.Message, error) { return s.api.Messages(target, a.After, n) },
		limit, a.After, func(m *state.Message) uint64 { return m.Seq })
	return err
}

// GetInbox is session.getInbox.
func (s *rpcService) GetInbox(_ *http.Request, a *InboxArgs, reply *MessagesReply) error {
	id, err := parseSessionID("sessionId", a.SessionID)
	if err != nil {
		return err
	}
	limit, err := pageLimit("limit", a.Limit)
	if err != nil {
		return err
	}
	if _, err := s.api.Identity(id); errors.Is(err, state.ErrNotFound) {
		return errorf(CodeUnknownIdentity, "unknown identity %s: not registered", id)
	} else if err != nil {
		return err
	}
	*reply, err = page(func(n int) ([]*state.Message, error) { return s.api.Inbox(id, a.After, n) },
		limit, a.After, func(m *state.Message) uint64 { return m.Position })
	return err
}

// GetChannel is session.getChannel.
func (s *rpcService) GetChannel(_ *http.Request, a *ChannelArgs, reply *ChannelReply) error {
	id, err := parseID("channel", a.Channel)
	if err != nil {
		return err
	}
	limit, err := pageLimit("membersLimit", a.MembersLimit)
	if err != nil {
		return err
	}
	var after *crypto.SessionID
	if a.MembersAfter != "" {
		sid, err := parseSessionID("membersAfter", a.MembersAfter)
		if err != nil {
			return err
		}
		after = &sid
	}
	c, err := s.getChannel(id)
	if err != nil {
		return err
	}
	members, err := s.api.ChannelMembers(id, after, limit)
	if err != nil {
		return err
	}
	*reply = ChannelReply{
		Channel:     c.ID,
		Owner:       c.Owner.String(),
		Name:        c.Name,
		Height:      c.Height,
		CreatedAt:   c.CreatedAt,
		MemberCount: c.Members,
		Members:     sessionIDs(members),
	}
	return nil
}

// IsChannelMember is session.isChannelMember.
func (s *rpcService) IsChannelMember(_ *http.Request, a *MembershipArgs, reply *MembershipReply) error {
	id, err := parseID("channel", a.Channel)
	if err != nil {
		return err
	}
	member, err := parseSessionID("sessionId", a.SessionID)
	if err != nil {
		return err
	}
	if _, err := s.getChannel(id); err != nil {
		return err
	}
	ok, err := s.api.IsChannelMember(id, member)
	if err != nil {
		return err
	}
	reply.Member = ok
	return nil
}

// Status is session.status.
func (s *rpcService) Status(_ *http.Request, _ *EmptyArgs, reply *StatusReply) error {
	st, err := s.api.Status()
	if err != nil {
		return err
	}
	*reply = StatusReply{
		ChainID:          st.ChainID,
		LastAcceptedID:   st.LastAcceptedID,
		Height:           st.Height,
		LastAcceptedTime: st.LastAcceptedTime,
		MempoolTxs:       st.MempoolTxs,
		MempoolBytes:     st.MempoolBytes,
		ProcessingBlocks: st.ProcessingBlocks,
		AcceptedTxs:      st.AcceptedTxs,
		Identities:       st.Counts.Identities,
		Sessions:         st.Counts.Sessions,
		Channels:         st.Counts.Channels,
		MessagesStored:   st.Counts.MessagesStored,
		MessagesTotal:    st.Counts.MessagesTotal,
		MessagesPruned:   st.Counts.MessagesPruned,
	}
	return nil
}

// Health is session.health. An unhealthy node answers with healthy false
// and the reason; a VM that is not running answers with CodeUnavailable.
func (s *rpcService) Health(r *http.Request, _ *EmptyArgs, reply *HealthReply) error {
	hc, ok := s.api.(HealthChecker)
	if !ok {
		st, err := s.api.Status()
		if err != nil {
			return err
		}
		*reply = HealthReply{
			Healthy:          true,
			LastAcceptedID:   st.LastAcceptedID.String(),
			LastAcceptedTime: st.LastAcceptedTime,
			Height:           st.Height,
			ProcessingBlocks: st.ProcessingBlocks,
			MempoolTxs:       st.MempoolTxs,
			MempoolBytes:     st.MempoolBytes,
		}
		return nil
	}
	rep, err := hc.HealthCheck(r.Context())
	if errors.Is(err, vm.ErrNotInitialized) || errors.Is(err, vm.ErrShutdown) {
		return err
	}
	reply.Healthy = true
	if hr, ok := rep.(vm.HealthReport); ok {
		*reply = HealthReply{
			Healthy:            hr.Healthy,
			LastAcceptedID:     hr.LastAcceptedID,
			LastAcceptedTime:   hr.LastAcceptedTime,
			Height:             hr.Height,
			ProcessingBlocks:   hr.ProcessingBlocks,
			MempoolTxs:         hr.MempoolTxs,
			MempoolBytes:       hr.MempoolBytes,
			Database:           hr.Database,
			SignaturesVerified: hr.SignaturesVerified,
		}
	}
	reply.Healthy = err == nil && reply.Healthy
	if err != nil {
		reply.Error = err.Error()
	}
	return nil
}

// GetConfig is session.getConfig.
func (s *rpcService) GetConfig(_ *http.Request, _ *EmptyArgs, reply *ConfigReply) error {
	c := s.api.Config()
	*reply = ConfigReply{
		ChainID:           s.api.ChainID(),
		SessionTTL:        c.SessionTTL,
		MaxMessages:       c.MaxMessages,
		MaxChannels:       c.MaxChannels,
		RetentionDays:     c.RetentionDays,
		IDPrefix:          c.IDPrefix,
		MaxCiphertextSize: config.MaxCiphertextSize,
		MaxMetadataSize:   config.MaxMetadataSize,
		MaxParticipants:   config.MaxParticipants,
		MaxChannelName:    config.MaxChannelNameSize,
		MaxChannelMembers: config.MaxChannelMembers,
		MaxTxSize:         config.MaxTxSize,
		MaxPageSize:       MaxPageSize,
		MaxBodySize:       MaxBodySize,
	}
	return nil
}
