package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

// Prekey policy of a Messenger (docs/protocol.md section 11).
const (
	// PrekeyLowWater: fewer unclaimed one-time prekeys on chain than this
	// and a replenishment publishes more.
	PrekeyLowWater = 20
	// PrekeyTarget is how many unclaimed one-time prekeys a replenishment
	// aims at (the chain keeps at most config.MaxUnclaimedPrekeys).
	PrekeyTarget = 64
	// SignedPrekeyRenewal: a signed prekey with less time than this left is
	// replaced.
	SignedPrekeyRenewal = 2 * 24 * time.Hour
	// PrekeyCheckInterval is how often Send, Read and Inbox look at the
	// chain's count of prekeys (more often when this device used one).
	PrekeyCheckInterval = time.Hour
)

// PrekeyReport describes an identity's prekeys on chain and on this
// device, and what a replenishment published.
type PrekeyReport struct {
	// SignedPrekeyID and SignedPrekeyExpiresAt are the chain's current
	// signed prekey, verified from its transaction (0 and zero: none, or
	// expired).
	SignedPrekeyID        uint32
	SignedPrekeyExpiresAt time.Time
	// Unclaimed is how many one-time prekeys are left unclaimed on chain
	// (the node's count).
	Unclaimed uint32
	// Held is how many one-time prekey secrets this device holds that no
	// claim on chain was noted for; HeldClaimed how many claimed ones wait
	// for the handshakes that use them (or their sessions' end).
	Held        int
	HeldClaimed int
	// Published are the PublishPrekeys transactions of this call (none:
	// nothing was needed); PublishedSigned the ID of the new signed prekey
	// (0: none) and PublishedOneTime how many one-time prekeys they hold.
	Published        []*TxReply
	PublishedSigned  uint32
	PublishedOneTime int

	chainSigned  uint32 // the chain's signed prekey ID, expired or not (the node's word)
	chainOneTime uint32 // the highest one-time prekey ID published (the node's word)
}

// Prekeys reports the identity's prekeys without publishing anything.
func (m *Messenger) Prekeys(ctx context.Context) (*PrekeyReport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rep, _, _, err := m.prekeyStatus(ctx)
	return rep, err
}

// ReplenishPrekeys publishes what the identity's prekeys need: a new signed
// prekey when there is none on chain, it expires within
// SignedPrekeyRenewal, or this device does not hold its secret (a new
// device); one-time prekeys up to PrekeyTarget when fewer than
// PrekeyLowWater are left unclaimed (within the chain's and the device's
// bounds). Each transaction waits for its block unless WithoutWaiting.
func (m *Messenger) ReplenishPrekeys(ctx context.Context) (*PrekeyReport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.replenish(ctx)
}

// prekeyStatus returns the report and what a replenishment must publish.
func (m *Messenger) prekeyStatus(ctx context.Context) (rep *PrekeyReport, signed bool, oneTime int, err error) {
	raw, err := m.c.RawPrekeyBundle(ctx, m.id.SessionID)
	if err != nil {
		return nil, false, 0, err
	}
	now := m.now()
	dev := m.dev.PrekeyStatus()
	rep = &PrekeyReport{Unclaimed: raw.Unclaimed, Held: dev.OneTimePrekeys, HeldClaimed: dev.ClaimedOneTimePrekeys}
	if raw.SignedPrekey != nil {
		rep.chainSigned = raw.SignedPrekey.ID
	}
	b, err := VerifyPrekeyBundle(m.chainID, m.id.SessionID, raw, now)
	// The highest one-time prekey ID published: the node's word (a lie
	// gets an upload refused or makes IDs jump, within the chain's
	// bound on a step; it opens nothing).
	rep.chainOneTime = raw.LastOneTimeID
	switch {
	case err == nil:
		rep.SignedPrekeyID, rep.SignedPrekeyExpiresAt = b.SignedPrekey.ID, time.UnixMilli(b.SignedPrekey.ExpiresAt)
		signed = rep.SignedPrekeyExpiresAt.Sub(now) < SignedPrekeyRenewal || b.SignedPrekey.ID != dev.SignedPrekeyID
	case errors.Is(err, ErrNoSignedPrekey), errors.Is(err, ErrPrekeyExpired):
		signed = true
	default:
		return nil, false, 0, err
	}
	if raw.Unclaimed < PrekeyLowWater {
		oneTime = PrekeyTarget - int(raw.Unclaimed)
		oneTime = min(oneTime, config.MaxUnclaimedPrekeys-int(raw.Unclaimed), chat.MaxOneTimePrekeys-dev.OneTimePrekeys)
		oneTime = max(oneTime, 0)
	}
	return rep, signed, oneTime, nil
}

func (m *Messenger) replenish(ctx context.Context) (*PrekeyReport, error) {
	if err := m.noteClaims(ctx); err != nil {
		return nil, err
	}
	rep, signed, oneTime, err := m.prekeyStatus(ctx)
	if err != nil {
		return nil, err
	}
	return m.publish(ctx, rep, signed, oneTime)
}

// PreparePrekeys is ReplenishPrekeys without submitting: it makes the
// prekeys a replenishment would publish (at most maxOneTime one-time
// prekeys when it is not negative), keeping their secrets in this
// device's store as ReplenishPrekeys does, and returns the PublishPrekeys
// transactions sign made (in the order to submit them; none when nothing
// is needed). Transactions never submitted leave secrets nobody claims:
// the next replenishment publishes a new signed prekey and one-time
// prekeys above their IDs.
func (m *Messenger) PreparePrekeys(ctx context.Context, maxOneTime int, sign TxSigner) ([]*tx.Tx, *PrekeyReport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.noteClaims(ctx); err != nil {
		return nil, nil, err
	}
	rep, signed, oneTime, err := m.prekeyStatus(ctx)
	if err != nil {
		return nil, nil, err
	}
	var txs []*tx.Tx
	rep, err = m.publishWith(ctx, rep, signed, oneTime, maxOneTime, func(ctx context.Context, p *tx.PublishPrekeys) error {
		t, err := m.signWith(ctx, sign, p)
		if err == nil {
			txs = append(txs, t)
		}
		return err
	})
	return txs, rep, err
}

// publish publishes a signed prekey (if signed) and oneTime one-time
// prekeys, in as few transactions as the chain allows.
func (m *Messenger) publish(ctx context.Context, rep *PrekeyReport, signed bool, oneTime int) (*PrekeyReport, error) {
	return m.publishWith(ctx, rep, signed, oneTime, -1, func(ctx context.Context, p *tx.PublishPrekeys) error {
		r, err := m.c.Submit(ctx, m.id, p)
		if err != nil {
			return fmt.Errorf("service: publishing prekeys: %w", err)
		}
		rep.Published = append(rep.Published, r)
		if err := m.wait(ctx, &Sent{TxID: r.TxID}); err != nil {
			return fmt.Errorf("service: publishing prekeys: %w", err)
		}
		return nil
	})
}

// publishWith makes the prekeys publish publishes and hands each
// PublishPrekeys payload to out (which submits or signs it); limit, when
// not negative, caps the one-time prekeys.
func (m *Messenger) publishWith(ctx context.Context, rep *PrekeyReport, signed bool, oneTime, limit int, out func(context.Context, *tx.PublishPrekeys) error) (*PrekeyReport, error) {
	m.st.PrekeysChecked = m.now().UnixMilli()
	m.st.HeldAtCheck = m.dev.PrekeyStatus().OneTimePrekeys
	if err := m.st.save(m.side); err != nil {
		return nil, err
	}
	dev := m.dev.PrekeyStatus()
	fresh := dev.SignedPrekeyID == 0 && dev.NextOneTimePrekeyID <= 1 // a store that never made a prekey
	if rep.chainOneTime >= dev.NextOneTimePrekeyID || fresh && rep.chainSigned > 0 {
		// The chain has prekeys this device never made: it replaced a
		// lost one. IDs continue above the chain's (never reused), and
		// the next upload retires the lost device's one-time prekeys.
		if err := m.dev.ResumePrekeyIDs(rep.chainSigned, max(rep.chainOneTime, dev.NextOneTimePrekeyID-1)); err != nil {
			return nil, err
		}
		// The first upload retires every one-time prekey on chain (their
		// secrets are gone with the lost device): it replaces them.
		signed = true
		rep.Unclaimed = 0
		oneTime = max(oneTime, min(PrekeyTarget, config.MaxUnclaimedPrekeys, chat.MaxOneTimePrekeys-dev.OneTimePrekeys))
	}
	if limit >= 0 {
		oneTime = min(oneTime, limit)
	}
	for signed || oneTime > 0 {
		n := min(oneTime, chat.MaxPrekeysPerUpload, config.MaxPrekeysPerTx)
		up, err := m.dev.GeneratePrekeys(m.now(), signed, n)
		if err != nil {
			return rep, err
		}
		p := &tx.PublishPrekeys{RetireThrough: up.RetireThrough}
		if up.SignedPrekey != nil {
			p.Signed = &tx.SignedPrekey{ID: up.SignedPrekey.ID, ExpiresAt: up.SignedPrekey.ExpiresAt.UnixMilli(), KEMPublicKey: up.SignedPrekey.PublicKey}
		}
		for _, k := range up.OneTimePrekeys {
			p.OneTime = append(p.OneTime, tx.OneTimePrekey{ID: k.ID, KEMPublicKey: k.PublicKey})
		}
		if err := out(ctx, p); err != nil {
			return rep, err
		}
		if p.Signed != nil {
			rep.PublishedSigned = p.Signed.ID
			rep.SignedPrekeyID, rep.SignedPrekeyExpiresAt = p.Signed.ID, up.SignedPrekey.ExpiresAt
		}
		rep.PublishedOneTime += n
		rep.Unclaimed += uint32(n)
		signed, oneTime = false, oneTime-n
	}
	dev = m.dev.PrekeyStatus()
	rep.Held, rep.HeldClaimed = dev.OneTimePrekeys, dev.ClaimedOneTimePrekeys
	return rep, nil
}

// maintainPrekeys replenishes prekeys on its own (unless
// WithoutAutoPrekeys): when PrekeyCheckInterval passed since the last
// check, when this device used a one-time prekey since, or when its signed
// prekey nears its expiry. Its outcome goes to WithPrekeyReport; it never
// fails the operation that ran it.
func (m *Messenger) maintainPrekeys(ctx context.Context) {
	if !m.autoPrekeys {
		return
	}
	now := m.now()
	dev := m.dev.PrekeyStatus()
	due := now.Sub(time.UnixMilli(m.st.PrekeysChecked)) >= PrekeyCheckInterval ||
		dev.OneTimePrekeys < m.st.HeldAtCheck ||
		(dev.SignedPrekeyID != 0 && dev.SignedPrekeyExpiresAt.Sub(now) < SignedPrekeyRenewal)
	if !due || ctx.Err() != nil {
		return
	}
	rep, err := m.replenish(ctx)
	if m.onPrekeys != nil && (err != nil || len(rep.Published) > 0) {
		m.onPrekeys(rep, err)
	}
}

// Registration is what Register did.
type Registration struct {
	SessionID string
	// Already: the identity was registered before, with these keys.
	Already bool
	TxID    ids.ID // the registration (empty if Already)
	Height  uint64 // its block (with Already: the registering block)
	Prekeys *PrekeyReport
}

// Register makes the identity reachable: it registers it (solving the
// chain's proof of work) unless it is registered already with these keys,
// then publishes its prekeys (ReplenishPrekeys). A registration under the
// same Session ID with other keys is reported as ErrIdentityMismatch.
func (m *Messenger) Register(ctx context.Context) (*Registration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := &Registration{SessionID: m.id.SessionID}
	rec, err := m.c.Identity(ctx, m.id.SessionID)
	switch code, _ := CodeOf(err); {
	case err == nil:
		if !equalKeys(rec, m) {
			return nil, fmt.Errorf("%w: the chain holds other keys under %s", ErrIdentityMismatch, m.id.SessionID)
		}
		out.Already, out.Height = true, rec.Height
	case code == CodeUnknownIdentity:
		r, err := m.c.Register(ctx, m.id)
		if errors.Is(err, ErrAlreadyExists) {
			// Registered meanwhile (another client, or a copy pending).
			return m.registeredMeanwhile(ctx, out)
		}
		if err != nil {
			return nil, err
		}
		s := &Sent{TxID: r.TxID}
		if err := m.wait(ctx, s); err != nil {
			return nil, err
		}
		out.TxID, out.Height = r.TxID, s.Height
		if m.noWait {
			// Not in a block yet, so the chain cannot say what is
			// missing: everything is (a new identity has no prekeys).
			out.Prekeys, err = m.publish(ctx, &PrekeyReport{Held: m.dev.PrekeyStatus().OneTimePrekeys}, true, PrekeyTarget)
			return out, err
		}
	default:
		return nil, err
	}
	if out.Prekeys, err = m.replenish(ctx); err != nil {
		return out, err
	}
	return out, nil
}

func (m *Messenger) registeredMeanwhile(ctx context.Context, out *Registration) (*Registration, error) {
	rec, err := m.c.Identity(ctx, m.id.SessionID)
	if err != nil {
		return nil, err
	}
	if !equalKeys(rec, m) {
		return nil, fmt.Errorf("%w: the chain holds other keys under %s", ErrIdentityMismatch, m.id.SessionID)
	}
	out.Already, out.Height = true, rec.Height
	if out.Prekeys, err = m.replenish(ctx); err != nil {
		return out, err
	}
	return out, nil
}

func equalKeys(rec *IdentityReply, m *Messenger) bool {
	return string(rec.KEMPublicKey) == string(m.id.KEMPublicKey) && string(rec.DSAPublicKey) == string(m.id.DSAPublicKey)
}

// maxClaimPages bounds the pages of the claim log one replenishment reads.
const maxClaimPages = 10

// noteClaims reads the chain's claim log of this identity's prekeys
// (getClaims) from where it was read through, verifies each entry against
// its signed transaction (a SendMessage or CreateSession by the claimer
// whose claims name this identity's prekeys), and tells the device
// (chat's NoteClaims): a claimed one-time prekey's secret is kept until
// its handshake comes or its session ends, and deleted then even for a
// session this device never reads (docs/protocol.md section 11.3). The end
// of a session is the node's word (its expiry or closing time): a lie
// makes a secret go early or late, never opens anything.
func (m *Messenger) noteClaims(ctx context.Context) error {
	for range maxClaimPages {
		page, err := m.c.Claims(ctx, m.id.SessionID, m.st.ClaimsRead, DefaultPageSize)
		if err != nil {
			return err
		}
		var noted []chat.ClaimedPrekey
		for _, e := range page.Claims {
			if e.OneTimePrekeyID == 0 {
				continue
			}
			end, err := m.verifyClaim(ctx, &e)
			if err != nil {
				return err
			}
			noted = append(noted, chat.ClaimedPrekey{ID: e.OneTimePrekeyID, SessionEnd: end})
		}
		if len(noted) > 0 {
			if err := m.dev.NoteClaims(m.now(), noted); err != nil {
				return err
			}
		}
		if page.Next <= m.st.ClaimsRead {
			return nil
		}
		m.st.ClaimsRead = page.Next
		if err := m.st.save(m.side); err != nil {
			return err
		}
		if !page.More {
			return nil
		}
	}
	return nil
}

// verifyClaim checks a claim log entry against its signed transaction and
// returns when its session stops taking messages.
func (m *Messenger) verifyClaim(ctx context.Context, e *ClaimEntry) (time.Time, error) {
	g, err := m.c.Tx(ctx, e.TxID)
	if err != nil {
		return time.Time{}, err
	}
	claimer, err := m.c.PublicIdentity(ctx, e.Claimer)
	if err != nil {
		return time.Time{}, err
	}
	t, err := tx.Parse(g.Tx)
	if err != nil || t.ID() != e.TxID {
		return time.Time{}, untrusted("the transaction of claim %d is not %s", e.Position, e.TxID)
	}
	var claims []tx.Claim
	var session ids.ID
	switch p := t.Payload.(type) {
	case *tx.SendMessage:
		claims, session = p.Claims, p.Session
	case *tx.CreateSession:
		claims, session = p.Claims, tx.SessionIDFor(m.chainID, t.Author, t.Nonce)
	}
	pk, err := crypto.ParseDSAPublicKey(claimer.DSAPublicKey)
	if err != nil {
		return time.Time{}, err
	}
	self, err := crypto.ParseSessionID(m.id.SessionID)
	if err != nil {
		return time.Time{}, err
	}
	want := tx.Claim{Participant: self, SignedPrekeyID: e.SignedPrekeyID, OneTimePrekeyID: e.OneTimePrekeyID}
	switch {
	case t.ChainID != m.chainID, t.Author.String() != e.Claimer, session != e.Session, !t.VerifySignature(pk):
		return time.Time{}, untrusted("claim %d does not match its signed transaction %s", e.Position, e.TxID)
	case !slices.Contains(claims, want):
		return time.Time{}, untrusted("transaction %s does not claim one-time prekey %d of yours", e.TxID, e.OneTimePrekeyID)
	}
	r, err := m.c.Session(ctx, session)
	if err != nil {
		return time.Time{}, err
	}
	end := r.ExpiresAt
	if r.ClosedAt != 0 && r.ClosedAt < end {
		end = r.ClosedAt
	}
	return time.UnixMilli(end), nil
}
