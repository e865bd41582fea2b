package service

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/gorilla/rpc/v2"
)

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
