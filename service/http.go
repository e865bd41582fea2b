package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/rpc/v2"
)

// handler validates the HTTP request and the JSON-RPC envelope, then runs
// each call through gorilla/rpc (which decodes params and calls the
// method), or, for a write whose tx the one-pass scanner decoded,
// directly (direct.go), and writes the responses itself, so every
// failure gets a JSON-RPC error body (gorilla answers some in
// text/plain), panics are recovered per call, and the bytes a request
// holds are accounted for.
//
// HTTP status: 200 for every response to a well-formed request object or
// batch, errors included; 204 when nothing is to be answered (only
// notifications); 405 (not POST), 415 (Content-Type), 413 (body or batch
// too large), 400 (not JSON, or not a JSON-RPC 2.0 request), 503 (the
// node is too busy to read the body). Never 500.
type handler struct {
	rpc  *rpc.Server
	svc  *rpcService
	opts Options
	// general sends every call through gorilla/rpc, the write methods
	// too (tests compare both paths).
	general bool
	// resp holds the bytes of large responses from the moment their
	// call starts (page methods, a worst case) or ends (others, the
	// size) until they are written to the connection; body holds request
	// bodies and what is decoded from them.
	resp, body *budget
	// slots bounds the calls executing at once.
	slots chan struct{}

	// The streaming transport's connections (stream.go).
	wsMu      sync.Mutex
	conns     map[*wsConn]struct{}
	wsClosing bool
	wsDone    sync.WaitGroup
	subs      subIndex // push subscriptions (stream_push.go)
}

type ctxKey struct{}

// codecHeader is the header of the requests handed to gorilla/rpc: it
// only reads Content-Type to pick the codec.
var codecHeader = http.Header{"Content-Type": {"application/json"}}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every answer, a 204 too, whichever path the calls take.
	w.Header()["X-Content-Type-Options"] = headerNosniff
	if r.Method == http.MethodGet && hasToken(r.Header["Upgrade"], "websocket") {
		h.serveUpgrade(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeResponse(w, http.StatusMethodNotAllowed, nullID, nil,
			errorf(CodeInvalidRequest, "HTTP method %s not allowed: POST a JSON-RPC 2.0 request", r.Method))
		return
	}
	if e := checkContentType(r.Header.Get("Content-Type")); e != nil {
		writeResponse(w, http.StatusUnsupportedMediaType, nullID, nil, e)
		return
	}
	body, held, pooled, status, e := h.readBody(w, r)
	defer h.body.release(held)
	if pooled != nil {
		// Nothing keeps a slice of the body once the response is
		// written: ids, params and errors are copied or encoded into
		// the response, a tx is decoded into its own buffer.
		defer bodyPool.Put(pooled)
	}
	if e != nil {
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeResponse(w, status, nullID, nil, e)
		return
	}
	b := bytes.TrimLeft(body, " \t\r\n")
	if len(b) > 0 && b[0] == '[' {
		h.serveBatch(w, r, b)
		return
	}
	c := &call{}
	if e := c.parse(b); e != nil {
		writeResponse(w, http.StatusBadRequest, c.responseID(), nil, e)
		return
	}
	h.run(r, w, c)
	if !c.hasID {
		h.resp.release(c.held)
		w.WriteHeader(http.StatusNoContent) // a notification gets no response
		return
	}
	setJSONHeaders(w)
	if n := len(c.out) + 1; n > smallBody {
		// Without it net/http would send a large body chunked; it sets
		// the length of a small one itself.
		w.Header()["Content-Length"] = []string{strconv.Itoa(n)}
	}
	h.extendWrite(w, len(c.out))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(c.out)
	_, _ = w.Write(newline)
	h.resp.release(c.held)
}

var newline = []byte{'\n'}

// smallBody is the size up to which net/http buffers a response body
// whole and sets its Content-Length when the handler returns.
const smallBody = 2048

// checkContentType requires application/json (any parameters): a request
// without it, or with a type a browser form or a "simple" fetch can send
// (text/plain, forms), is refused, so a web page on another origin cannot
// post to the node without passing a CORS preflight.
func checkContentType(ct string) *Error {
	switch ct {
	case "application/json", "application/json; charset=utf-8":
		return nil // what clients send, without parsing
	case "":
		return errorf(CodeInvalidRequest, "Content-Type must be application/json, got none")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errorf(CodeInvalidRequest, "Content-Type must be application/json, got %.64q", ct)
	}
	return nil
}

// The values of the headers of every response, shared: net/http only
// reads them, and an Add elsewhere appends to a full slice, which copies.
var (
	headerJSON    = []string{"application/json; charset=utf-8"}
	headerNosniff = []string{"nosniff"}
)

func setJSONHeaders(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = headerJSON // canonical keys: no Set, no allocation
	h["X-Content-Type-Options"] = headerNosniff
}

// bodyPoolSize is the size of the pooled body buffers: a request of
// one write call (a 3.7 KB message is 5.1 KB of request) fits.
const bodyPoolSize = 8 << 10

// bodyPool holds body buffers of bodyPoolSize bytes, so the ingestion
// path does not allocate (and clear) one per request.
var bodyPool = sync.Pool{New: func() any {
	b := make([]byte, bodyPoolSize)
	return &b
}}

// readBody reads the body (at most MaxBodySize bytes), holding against
// the body budget twice the buffer it grows into (the body and what is
// decoded from it). The buffer starts at bodyPoolSize (from bodyPool,
// returned as pooled: give it back once the body is no longer used) and
// doubles as bytes arrive, whatever Content-Length says, so a client that
// declares a large body and sends it slowly holds about what it sent.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, held int64, pooled *[]byte, status int, e *Error) {
	rd := http.MaxBytesReader(w, r.Body, MaxBodySize)
	limit := MaxBodySize + 1 // one more byte: see the end without growing
	if cl := r.ContentLength; cl >= 0 && cl < MaxBodySize {
		limit = int(cl) + 1
	}
	grow := func(n int) bool {
		if !h.body.acquire(r.Context(), 2*int64(n), h.opts.BusyWait) {
			return false
		}
		held += 2 * int64(n)
		return true
	}
	busy := func() ([]byte, int64, *[]byte, int, *Error) {
		return nil, held, pooled, http.StatusServiceUnavailable,
			errorf(CodeBusy, "busy: request bodies in flight exceed the node's budget; retry later")
	}
	tooLarge := func() ([]byte, int64, *[]byte, int, *Error) {
		return nil, held, pooled, http.StatusRequestEntityTooLarge, errorf(CodeTooLarge, "request body exceeds %d bytes", MaxBodySize)
	}
	// The first bytes go into a pooled buffer of bodyPoolSize: a request
	// holds 2 × 8 KiB until more arrive, whatever it declares (chunked or
	// a Content-Length of a megabyte), so connections that send headers
	// and no body (1024 × 16 KiB = 16 MiB) cannot take the body budget.
	if r.ContentLength > MaxBodySize {
		// Refused unread: a client that sent Expect: 100-continue never
		// sends the body.
		return tooLarge()
	}
	size := min(limit, bodyPoolSize)
	if !grow(size) {
		return busy()
	}
	pooled = bodyPool.Get().(*[]byte)
	buf := (*pooled)[:0:size]
	for {
		if len(buf) == cap(buf) {
			n := min(2*cap(buf), limit) // the last step no larger than needed
			if n == cap(buf) {
				return tooLarge()
			}
			if !grow(n - cap(buf)) {
				return busy()
			}
			buf = append(make([]byte, 0, n), buf...)
		}
		m, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, held, pooled, 0, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return tooLarge()
			}
			var op *net.OpError
			if errors.As(err, &op) && op.Err != nil {
				err = op.Err // without the node's and the client's addresses
			}
			return nil, held, pooled, http.StatusBadRequest, errorf(CodeParseError, "reading the request body: %v", err)
		}
	}
}

// call is one JSON-RPC call: the parsed request object, then its
// response.
type call struct {
	id     []byte // raw JSON id; nil when absent
	hasID  bool   // false: a notification
	method string
	params []byte // raw JSON params; nil when absent or null
	tx     []byte // params {"tx": ...} decoded by the fast path
	haveTx bool
	err    *Error // the request object is invalid (batch elements)

	out  []byte // the encoded response object
	held int64  // response budget bytes held for out
	slot bool   // holds an execution slot
	h    *handler
	// wait, when set, is called before the call waits for an execution
	// slot or response budget: the streaming transport writes the
	// responses it has buffered, so they never wait on another request
	// (docs/stream.md section 4, "Writing").
	wait func()
}

func (c *call) beforeWait() {
	if c.wait != nil {
		c.wait()
	}
}

// responseID is the id to answer with: the request's, or null.
func (c *call) responseID() []byte {
	if c.id == nil {
		return nullID
	}
	return c.id
}

// parse parses one request object (the whole of b, white space around
// allowed): the fast path first, the general path when it declines.
func (c *call) parse(b []byte) *Error {
	if len(b) > 0 && b[0] == '{' {
		if next, ok := c.parseFast(b, 0); ok && skipWS(b, next) == len(b) {
			return nil
		}
		*c = call{}
	}
	return c.parseGeneral(b)
}

// parseGeneral parses one request object with encoding/json's validator
// and gives the precise error for an invalid one. Its members are walked
// in place (eachMember): what it keeps is a few slices of the body, however
// many members the object has; a duplicate member counts as its last
// occurrence.
func (c *call) parseGeneral(body []byte) *Error {
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return errorf(CodeParseError, "empty request body")
	}
	if !json.Valid(b) {
		return errorf(CodeParseError, "request body is not valid JSON")
	}
	if b[0] != '{' {
		if b[0] == '[' {
			return errorf(CodeInvalidRequest, "a batch must not be nested in a batch")
		}
		return errorf(CodeInvalidRequest, "the request must be a JSON object")
	}
	var id, version, method, params []byte
	eachMember(b, func(key, value []byte) bool {
		switch string(key) {
		case "id":
			id = value
		case "jsonrpc":
			version = value
		case "method":
			method = value
		case "params":
			params = value
		}
		return true
	})
	if id != nil {
		switch ch := id[0]; {
		case ch == '"':
			// Echoed as it came: it must be valid UTF-8, or the response
			// would not be.
			if !utf8.Valid(id) {
				return errorf(CodeInvalidRequest, "id must be valid UTF-8")
			}
		case ch == '-', ch >= '0' && ch <= '9', string(id) == "null":
		default:
			return errorf(CodeInvalidRequest, "id must be a string, a number or null")
		}
		c.id, c.hasID = id, true
	}
	var v string
	if version == nil || version[0] != '"' || json.Unmarshal(version, &v) != nil || v != "2.0" {
		return errorf(CodeInvalidRequest, `"jsonrpc" must be "2.0"`)
	}
	if method == nil || method[0] != '"' || json.Unmarshal(method, &c.method) != nil || c.method == "" {
		return errorf(CodeInvalidRequest, `"method" must be a non-empty string`)
	}
	if params != nil && string(params) != "null" {
		if params[0] != '{' && params[0] != '[' {
			return errorf(CodeInvalidRequest, `"params" must be an object`)
		}
		c.params = params
	}
	return nil
}

// run executes a parsed call and leaves its encoded response in c.out,
// with c.held bytes of the response budget held for it (release them
// once out is written).
func (h *handler) run(r *http.Request, w http.ResponseWriter, c *call) {
	if c.err != nil {
		c.out = encodeError(c.responseID(), c.err)
		return
	}
	c.h = h
	if c.haveTx && !h.general {
		if want, ok := txMethods[c.method]; ok {
			h.runTx(r.Context(), c, want)
			return
		}
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { //nolint:errorlint // sentinel value, as net/http compares it
					panic(p)
				}
				h.endCall(c)
				h.resp.release(c.held)
				c.held = 0
				c.out = encodeError(c.responseID(), &Error{Code: CodeInternal, Message: "internal error"})
			}
		}()
		r2 := r.WithContext(context.WithValue(r.Context(), ctxKey{}, c))
		r2.Header = codecHeader
		r2.Body = http.NoBody
		h.rpc.ServeHTTP(w, r2)
	}()
	if c.out == nil { // unreachable with this codec; never leave a call unanswered
		h.endCall(c)
		c.out = encodeError(c.responseID(), &Error{Code: CodeInternal, Message: "internal error: no response"})
	}
}

// beginCall takes what a call needs before its method runs: for the page
// methods, the response budget for the largest page the arguments allow;
// then an execution slot. Waiting is bounded by Options.BusyWait.
func (h *handler) beginCall(ctx context.Context, c *call, args any) error {
	if n := pageReservation(args); n > 0 {
		if !h.resp.tryAcquire(n) {
			c.beforeWait()
			if !h.resp.acquire(ctx, n, h.opts.BusyWait) {
				return errBusyResponses
			}
		}
		c.held = n
	}
	select {
	case h.slots <- struct{}{}:
		c.slot = true
		return nil
	default:
	}
	c.beforeWait()
	t := time.NewTimer(h.opts.BusyWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		c.slot = true
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	h.resp.release(c.held)
	c.held = 0
	return errorf(CodeBusy, "busy: %d calls are executing; retry later", cap(h.slots))
}

var errBusyResponses = &Error{Code: CodeBusy, Message: "busy: responses in flight exceed the node's budget; retry later"}

// endCall releases the execution slot, once.
func (h *handler) endCall(c *call) {
	if c.slot {
		c.slot = false
		<-h.slots
	}
}

// account settles the response budget once c.out is encoded: a page
// method's reservation shrinks to the response's size; another large
// response takes its size now, and is replaced by a busy error when the
// budget cannot hold it. Responses up to smallResponse bytes hold
// nothing: the connection's socket buffer takes them at once, even from a
// client that does not read.
func (h *handler) account(c *call) {
	n := int64(cap(c.out))
	switch {
	case n <= smallResponse:
		h.resp.release(c.held)
		c.held = 0
	case n <= c.held:
		h.resp.release(c.held - n)
		c.held = n
	case h.resp.tryAcquire(n - c.held):
		c.held = n
	default:
		h.resp.release(c.held)
		c.held = 0
		c.out = encodeError(c.responseID(), errBusyResponses)
	}
}

// smallResponse is the size up to which a response is written without
// holding the response budget.
const smallResponse = 16 << 10

// extendWrite gives a large response time to be written in proportion to
// its size (at least Options.MinWriteRate), so a client that does not
// read gives up its connection, and the budget it holds, in bounded time.
// Handlers without write deadlines (a Lux node's plugin bridge) keep
// their own timeouts.
func (h *handler) extendWrite(w http.ResponseWriter, n int) {
	if n <= smallResponse {
		return
	}
	h.setWriteDeadline(w, h.writeAllowance(int64(n)))
}

// writeAllowance is the time n bytes of response may take to write:
// WriteGrace plus n at MinWriteRate.
func (h *handler) writeAllowance(n int64) time.Duration {
	return h.opts.WriteGrace + time.Duration(float64(n)/float64(h.opts.MinWriteRate)*float64(time.Second))
}

func (h *handler) setWriteDeadline(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}

var nullID = json.RawMessage("null")

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
	ID      json.RawMessage `json:"id"`
}

// encodeError returns the response object of an error.
func encodeError(id []byte, e *Error) []byte {
	out, err := json.Marshal(response{JSONRPC: "2.0", Error: e, ID: id})
	if err != nil { // only id could fail, and it was validated JSON
		out, _ = json.Marshal(response{JSONRPC: "2.0", Error: e, ID: nullID})
	}
	return out
}

// encodeResult returns the response object of a result. The common
// replies have encoders of their own (appendReply); the rest go through
// encoding/json.
func encodeResult(id []byte, result any) ([]byte, *Error) {
	const head, mid = `{"jsonrpc":"2.0","result":`, `,"id":`
	if n, ok := replySize(result); ok {
		out := make([]byte, 0, len(head)+n+len(mid)+len(id)+1)
		out = append(out, head...)
		out = appendReply(out, result)
		out = append(out, mid...)
		out = append(out, id...)
		return append(out, '}'), nil
	}
	b, err := json.Marshal(result)
	if err != nil {
		return nil, errorf(CodeInternal, "internal error: encoding the result: %v", err)
	}
	// Assembled by hand: marshaling a response would validate and
	// compact the result (and id) once more. Both are valid JSON: b from
	// json.Marshal, id from the parsed request.
	out := make([]byte, 0, len(head)+len(b)+len(mid)+len(id)+1)
	out = append(out, head...)
	out = append(out, b...)
	out = append(out, mid...)
	out = append(out, id...)
	return append(out, '}'), nil
}

// writeResponse writes a response outside a call (an unusable HTTP
// request).
func writeResponse(w http.ResponseWriter, status int, id json.RawMessage, result any, rpcErr *Error) {
	var out []byte
	if rpcErr == nil {
		out, rpcErr = encodeResult(id, result)
	}
	if rpcErr != nil {
		out = encodeError(id, rpcErr)
	}
	setJSONHeaders(w)
	w.WriteHeader(status)
	_, _ = w.Write(append(out, '\n'))
}

// codec is the gorilla/rpc codec: JSON-RPC 2.0 over the call the handler
// parsed. It writes nothing to the connection: responses go into the
// call, and the handler writes them.
type codec struct{}

func (codec) NewRequest(r *http.Request) rpc.CodecRequest {
	c, _ := r.Context().Value(ctxKey{}).(*call)
	if c == nil {
		c = &call{id: nullID}
	}
	return &codecRequest{c: c, ctx: r.Context()}
}

type codecRequest struct {
	c   *call
	ctx context.Context
}

func (cr *codecRequest) Method() (string, error) {
	m, ok := methodSet[cr.c.method]
	if !ok {
		return "", errorf(CodeMethodNotFound, "method %.80q not found (methods are %s.<name>, e.g. %s.status)", cr.c.method, Namespace, Namespace)
	}
	return m, nil
}

func (cr *codecRequest) ReadRequest(args interface{}) error {
	c := cr.c
	if a, ok := args.(*TxArgs); ok && c.haveTx {
		a.Tx = c.tx
	} else if err := decodeParams(c.params, args); err != nil {
		return err
	}
	if c.h == nil { // not run by the handler (tests)
		return nil
	}
	return c.h.beginCall(cr.ctx, c, args)
}

func (cr *codecRequest) WriteResponse(_ http.ResponseWriter, reply interface{}) {
	c := cr.c
	out, e := encodeResult(c.responseID(), reply)
	if e != nil {
		out = encodeError(c.responseID(), e)
	}
	c.out = out
	if c.h != nil {
		c.h.endCall(c)
		c.h.account(c)
	}
}

// WriteError answers with HTTP 200 whatever status gorilla suggests: the
// request was well formed, and the JSON-RPC error says what went wrong.
func (cr *codecRequest) WriteError(_ http.ResponseWriter, _ int, err error) {
	c := cr.c
	c.out = encodeError(c.responseID(), toError(err))
	if c.h != nil {
		c.h.endCall(c)
		c.h.account(c)
	}
}

// decodeParams decodes params strictly: an object (or an array holding one
// object, as some JSON-RPC clients send), unknown fields refused. Members
// and elements are walked in place (eachMember, eachElement), so params
// of many members or elements cost no more than their bytes.
func decodeParams(raw json.RawMessage, args any) error {
	if a, ok := args.(*TxArgs); ok {
		if tx, ok := fastTxParams(raw); ok {
			a.Tx = tx
			return nil
		}
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	if !json.Valid(raw) {
		return errorf(CodeInvalidParams, "invalid params: not valid JSON")
	}
	if raw[0] == '[' {
		var first []byte
		n := 0
		eachElement(raw, func(elem []byte) bool {
			first = elem
			n++
			return n < 2
		})
		switch {
		case n == 0:
			raw = json.RawMessage("{}")
		case n == 1 && first[0] == '{':
			raw = first
		default:
			return errorf(CodeInvalidParams, "invalid params: params must be an object (by name)")
		}
	}
	if raw[0] != '{' {
		return errorf(CodeInvalidParams, "invalid params: params must be an object (by name)")
	}
	// encoding/json matches field names case-insensitively; JSON-RPC
	// by-name params match exactly.
	known := fieldNames(reflect.TypeOf(args))
	var unknown []byte
	eachMember(raw, func(key, _ []byte) bool {
		if !known[string(key)] {
			unknown = key
			return false
		}
		return true
	})
	if unknown != nil {
		return errorf(CodeInvalidParams, "invalid params: unknown field %.64q", unknown)
	}
	if err := json.Unmarshal(raw, args); err != nil {
		return paramsError(err)
	}
	return nil
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
		// Value holds a number as it came: a megabyte of digits is not
		// echoed.
		value := te.Value
		if len(value) > 64 {
			value = value[:64] + "…"
		}
		return errorf(CodeInvalidParams, "invalid params: %s must be %s, not %s", field, jsonTypeName(te.Type), value)
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
