package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
)

// Client defaults.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultPollInterval = 20 * time.Millisecond
	MaxPollInterval     = 500 * time.Millisecond
	DefaultWaitTimeout  = 2 * time.Minute
	// DefaultBusyRetries is how many times a call answered busy is sent
	// again, after 50, 100, 200 and 400 ms (± a quarter).
	DefaultBusyRetries = 4
	// maxResponseSize bounds a response body: a page of messages is at
	// most about 1.4 MB; a batch of many pages of the largest messages can
	// exceed this bound, and is then refused.
	maxResponseSize = 128 << 20
)

// Client is a typed JSON-RPC client of a SessionVM node. It is safe for
// concurrent use.
//
// Every method returns the node's errors as *Error (wrapped with the method
// name), so errors.As, errors.Is with the Err* values, CodeOf and
// IsNotFound work on them; transport failures are returned as they are.
type Client struct {
	url          string
	postURL      string  // url, or its http(s) form for a ws(s) URL
	stream       *stream // a ws(s) URL: calls go over a WebSocket
	hc           *http.Client
	timeout      time.Duration
	pollInterval time.Duration
	waitTimeout  time.Duration
	reqID        atomic.Uint64
	busyRetries  int

	workWorkers int              // goroutines solving registration work (0: GOMAXPROCS)
	now         func() time.Time // the clock prekey expiries are checked against

	mu         sync.Mutex
	chainID    ids.ID
	haveChain  bool
	reg        config.Registration // the chain's registration work
	haveReg    bool
	authors    map[string]*authorNonce
	identities map[string]*crypto.Identity // verified public identities
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient sets the HTTP client (default: a new http.Client).
func WithHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.hc = hc } }

// WithTimeout bounds each call (default DefaultTimeout; 0: only the
// context bounds it).
func WithTimeout(d time.Duration) ClientOption { return func(c *Client) { c.timeout = d } }

// WithPollInterval sets the first interval between WaitAccepted polls
// (default DefaultPollInterval); it grows to MaxPollInterval.
func WithPollInterval(d time.Duration) ClientOption {
	return func(c *Client) { c.pollInterval = d }
}

// WithBusyRetries sets how many times a call the node answered busy is
// sent again (default DefaultBusyRetries; 0: never).
func WithBusyRetries(n int) ClientOption { return func(c *Client) { c.busyRetries = max(n, 0) } }

// WithWorkers sets how many goroutines Register uses to solve the
// registration proof of work (default: GOMAXPROCS).
func WithWorkers(n int) ClientOption { return func(c *Client) { c.workWorkers = n } }

// WithClock sets the clock PrekeyBundle checks signed prekey expiries
// against (default time.Now).
func WithClock(now func() time.Time) ClientOption { return func(c *Client) { c.now = now } }

// WithWaitTimeout bounds WaitAccepted when its context has no deadline
// (default DefaultWaitTimeout).
func WithWaitTimeout(d time.Duration) ClientOption { return func(c *Client) { c.waitTimeout = d } }

// NewClient returns a client of the JSON-RPC endpoint at url, for example
// "http://127.0.0.1:9652/rpc" (sessiond) or
// "http://127.0.0.1:9650/ext/bc/<chainID>/rpc" (a Lux node).
//
// With a ws:// or wss:// URL ("ws://127.0.0.1:9652/rpc") the client
// makes its calls over one WebSocket (docs/stream.md), pipelined when
// several goroutines call at once, and over POST to the same endpoint
// (http:// or https://) while the WebSocket cannot be had: the node does
// not serve it (a Lux plugin), refused it (at its limit) or closed it.
// Close closes the WebSocket.
func NewClient(url string, opts ...ClientOption) *Client {
	c := &Client{
		url:          url,
		hc:           &http.Client{},
		timeout:      DefaultTimeout,
		pollInterval: DefaultPollInterval,
		waitTimeout:  DefaultWaitTimeout,
		busyRetries:  DefaultBusyRetries,
		authors:      make(map[string]*authorNonce),
		identities:   make(map[string]*crypto.Identity),
	}
	for _, o := range opts {
		o(c)
	}
	c.postURL = url
	if post, ok := streamURLs(url); ok {
		c.postURL = post
		c.stream = &stream{url: url}
		c.stream.opts.OnNotification = c.stream.onNotification
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.pollInterval <= 0 {
		c.pollInterval = DefaultPollInterval
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// URL returns the endpoint.
func (c *Client) URL() string { return c.url }

type clientRequest struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
	ID      uint64 `json:"id"`
}

type clientResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *Error          `json:"error"`
	ID      json.RawMessage `json:"id"`
}

// Call invokes the method (its wire name without the namespace, e.g.
// "getSession") with params and decodes the result into result (if not
// nil). The typed methods use it; it is exported for tools.
//
// A call the node answers busy (CodeBusy: it ran nothing, or it was a read
// whose response the node could not hold) is sent again after a short,
// growing pause, up to WithBusyRetries times.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	for attempt := 0; ; attempt++ {
		err := c.callOnce(ctx, method, params, result)
		if attempt >= c.busyRetries || !errors.Is(err, ErrBusy) || !c.busyPause(ctx, attempt) {
			return err
		}
	}
}

func (c *Client) callOnce(ctx context.Context, method string, params, result any) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	if params == nil {
		params = EmptyArgs{}
	}
	full := Namespace + "." + method
	reqID := c.reqID.Add(1)
	body, err := json.Marshal(clientRequest{JSONRPC: "2.0", Method: full, Params: params, ID: reqID})
	if err != nil {
		return fmt.Errorf("%s: encoding params: %w", full, err)
	}
	status, data, err := c.exchange(ctx, body, strconv.FormatUint(reqID, 10))
	if err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	var res clientResponse
	if err := json.Unmarshal(data, &res); err != nil || res.JSONRPC != "2.0" {
		return fmt.Errorf("%s: HTTP %d, not a JSON-RPC 2.0 response: %.200q", full, status, data)
	}
	if res.Error != nil {
		return fmt.Errorf("%s: %w", full, res.Error)
	}
	if string(res.ID) != strconv.FormatUint(reqID, 10) {
		return fmt.Errorf("%s: response id %.40s does not match request id %d", full, res.ID, reqID)
	}
	if status != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", full, status)
	}
	if result == nil {
		return nil
	}
	if err := decodeResult(res.Result, result); err != nil {
		return fmt.Errorf("%s: decoding the result: %w", full, err)
	}
	return nil
}

// exchange sends one request body (a request object whose JSON id is
// id, or a batch: id "") and returns the response body and its HTTP
// status (200 for an answer over the WebSocket).
func (c *Client) exchange(ctx context.Context, body []byte, id string) (int, []byte, error) {
	if c.stream != nil {
		data, handled, err := c.exchangeStream(ctx, body, id)
		if handled {
			return http.StatusOK, data, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.postURL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the response: %w", err)
	}
	if len(data) > maxResponseSize {
		return 0, nil, fmt.Errorf("response exceeds %d bytes", maxResponseSize)
	}
	return resp.StatusCode, data, nil
}

// Health is session.health.
func (c *Client) Health(ctx context.Context) (*HealthReply, error) {
	var r HealthReply
	return &r, c.Call(ctx, "health", nil, &r)
}

// Status is session.status.
func (c *Client) Status(ctx context.Context) (*StatusReply, error) {
	var r StatusReply
	return &r, c.Call(ctx, "status", nil, &r)
}

// Config is session.getConfig.
func (c *Client) Config(ctx context.Context) (*ConfigReply, error) {
	var r ConfigReply
	if err := c.Call(ctx, "getConfig", nil, &r); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.chainID, c.haveChain = r.ChainID, true
	c.reg, c.haveReg = r.Registration, true
	c.mu.Unlock()
	return &r, nil
}

// Registration returns the chain's registration work parameters (fetched
// once with getConfig).
func (c *Client) Registration(ctx context.Context) (config.Registration, error) {
	return c.registration(ctx)
}

// registration returns the chain's registration work parameters (fetched
// once with getConfig).
func (c *Client) registration(ctx context.Context) (config.Registration, error) {
	c.mu.Lock()
	reg, ok := c.reg, c.haveReg
	c.mu.Unlock()
	if ok {
		return reg, nil
	}
	r, err := c.Config(ctx)
	if err != nil {
		return config.Registration{}, err
	}
	return r.Registration, nil
}

// ChainID returns the chain ID transactions must carry (fetched once with
// getConfig, then cached).
func (c *Client) ChainID(ctx context.Context) (ids.ID, error) {
	c.mu.Lock()
	id, ok := c.chainID, c.haveChain
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	r, err := c.Config(ctx)
	if err != nil {
		return ids.Empty, err
	}
	return r.ChainID, nil
}

func (c *Client) write(ctx context.Context, method string, signed []byte) (*TxReply, error) {
	var r TxReply
	if err := c.Call(ctx, method, TxArgs{Tx: signed}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// IssueTx is session.issueTx: signed transaction bytes of any type.
func (c *Client) IssueTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "issueTx", signed)
}

// RegisterIdentityTx is session.registerIdentity.
func (c *Client) RegisterIdentityTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "registerIdentity", signed)
}

// CreateSessionTx is session.createSession; the reply's Session is the new
// session's ID.
func (c *Client) CreateSessionTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "createSession", signed)
}

// CloseSessionTx is session.closeSession.
func (c *Client) CloseSessionTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "closeSession", signed)
}

// SendMessageTx is session.sendMessage.
func (c *Client) SendMessageTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "sendMessage", signed)
}

// CreateChannelTx is session.createChannel; the reply's Channel is the new
// channel's ID.
func (c *Client) CreateChannelTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "createChannel", signed)
}

// JoinChannelTx is session.joinChannel.
func (c *Client) JoinChannelTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "joinChannel", signed)
}

// LeaveChannelTx is session.leaveChannel.
func (c *Client) LeaveChannelTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "leaveChannel", signed)
}

// PostChannelTx is session.postChannel.
func (c *Client) PostChannelTx(ctx context.Context, signed []byte) (*TxReply, error) {
	return c.write(ctx, "postChannel", signed)
}

// TxStatus is session.getTxStatus.
func (c *Client) TxStatus(ctx context.Context, txID ids.ID) (*TxStatusReply, error) {
	var r TxStatusReply
	if err := c.Call(ctx, "getTxStatus", TxStatusArgs{TxID: txID.String()}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Nonce is session.getNonce: the nonce the author's next transaction must
// carry.
func (c *Client) Nonce(ctx context.Context, sessionID string) (uint64, error) {
	var r NonceReply
	if err := c.Call(ctx, "getNonce", SessionIDArgs{SessionID: sessionID}, &r); err != nil {
		return 0, err
	}
	return r.Nonce, nil
}

// Identity is session.getIdentity.
func (c *Client) Identity(ctx context.Context, sessionID string) (*IdentityReply, error) {
	var r IdentityReply
	if err := c.Call(ctx, "getIdentity", SessionIDArgs{SessionID: sessionID}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ErrIdentityMismatch reports a node that returned public keys which do
// not derive the Session ID asked for.
var ErrIdentityMismatch = errors.New("service: the node returned keys that do not match the Session ID")

// PublicIdentity fetches a registered identity and checks that its keys
// derive sessionID, so a node cannot substitute keys. Results are cached
// (a Session ID is a hash of its keys, so they never change).
func (c *Client) PublicIdentity(ctx context.Context, sessionID string) (*crypto.Identity, error) {
	c.mu.Lock()
	id, ok := c.identities[sessionID]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	r, err := c.Identity(ctx, sessionID)
	if err != nil {
		return nil, err
	}
	id, err = crypto.NewPublicIdentity(r.KEMPublicKey, r.DSAPublicKey)
	if err != nil {
		return nil, fmt.Errorf("service: identity %s: %w", sessionID, err)
	}
	if id.SessionID != sessionID {
		return nil, fmt.Errorf("%w: asked %s, keys derive %s", ErrIdentityMismatch, sessionID, id.SessionID)
	}
	c.mu.Lock()
	c.identities[sessionID] = id
	c.mu.Unlock()
	return id, nil
}

// Session is session.getSession.
func (c *Client) Session(ctx context.Context, session ids.ID) (*SessionReply, error) {
	var r SessionReply
	if err := c.Call(ctx, "getSession", SessionArgs{Session: session.String()}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Messages is session.getMessages for a session: up to limit messages
// (0: DefaultPageSize) with sequence numbers above after.
func (c *Client) Messages(ctx context.Context, session ids.ID, after uint64, limit int) (*MessagesReply, error) {
	var r MessagesReply
	if err := c.Call(ctx, "getMessages", MessagesArgs{Session: session.String(), After: after, Limit: limit}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ChannelMessages is session.getMessages for a channel's posts.
func (c *Client) ChannelMessages(ctx context.Context, channel ids.ID, after uint64, limit int) (*MessagesReply, error) {
	var r MessagesReply
	if err := c.Call(ctx, "getMessages", MessagesArgs{Channel: channel.String(), After: after, Limit: limit}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Inbox is session.getInbox: messages addressed to sessionID (sent by
// other participants of its sessions) after the position cursor.
func (c *Client) Inbox(ctx context.Context, sessionID string, after uint64, limit int) (*MessagesReply, error) {
	var r MessagesReply
	if err := c.Call(ctx, "getInbox", InboxArgs{SessionID: sessionID, After: after, Limit: limit}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Channel is session.getChannel with a page of members after membersAfter
// ("" from the first; limit 0: DefaultPageSize).
func (c *Client) Channel(ctx context.Context, channel ids.ID, membersAfter string, membersLimit int) (*ChannelReply, error) {
	var r ChannelReply
	args := ChannelArgs{Channel: channel.String(), MembersAfter: membersAfter, MembersLimit: membersLimit}
	if err := c.Call(ctx, "getChannel", args, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// IsChannelMember is session.isChannelMember.
func (c *Client) IsChannelMember(ctx context.Context, channel ids.ID, sessionID string) (bool, error) {
	var r MembershipReply
	if err := c.Call(ctx, "isChannelMember", MembershipArgs{Channel: channel.String(), SessionID: sessionID}, &r); err != nil {
		return false, err
	}
	return r.Member, nil
}
