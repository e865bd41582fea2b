package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

// signSubmit is Submit with a hook: keep, if not nil, receives each signed
// transaction before it leaves the device (a Messenger writes it to disk
// there, so that after a crash it resends the same bytes rather than a
// second transaction for the same envelope). An error from keep stops
// the submission. It returns the node's reply and the transaction sent.
func (c *Client) signSubmit(ctx context.Context, id *crypto.Identity, payload tx.Payload, keep func(*tx.Tx) error) (*TxReply, *tx.Tx, error) {
	if id == nil || payload == nil {
		return nil, nil, errors.New("service: Submit needs an identity and a payload")
	}
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, nil, err
	}
	method := payload.Type().String()
	a := c.author(id.SessionID)
	a.mu.Lock()
	defer a.mu.Unlock()
	if payload.Type() == tx.TypeRegisterIdentity {
		// A registration's nonce is 0 (docs/chain.md section 2), whatever
		// the author's account says: a second one is refused as such.
		t, err := tx.Sign(id, chainID, 0, payload)
		if err != nil {
			return nil, nil, fmt.Errorf("service: signing %s: %w", method, err)
		}
		if keep != nil {
			if err := keep(t); err != nil {
				return nil, nil, err
			}
		}
		a.known = false // the next transaction asks the node
		r, err := c.write(ctx, method, t.Bytes())
		return r, t, err
	}
	for attempt := 0; ; attempt++ {
		if !a.known {
			n, err := c.Nonce(ctx, id.SessionID)
			if err != nil {
				return nil, nil, err
			}
			a.next, a.known = n, true
		}
		t, err := tx.Sign(id, chainID, a.next, payload)
		if err != nil {
			return nil, nil, fmt.Errorf("service: signing %s: %w", method, err)
		}
		if keep != nil {
			if err := keep(t); err != nil {
				return nil, nil, err
			}
		}
		r, err := c.write(ctx, method, t.Bytes())
		switch {
		case err == nil:
			a.next++
			return r, t, nil
		case errors.Is(err, ErrBadNonce) && attempt == 0:
			a.known = false
			continue
		}
		if _, fromNode := CodeOf(err); !fromNode || errors.Is(err, ErrBadNonce) {
			// Unknown whether the node admitted it: ask next time.
			a.known = false
		}
		return nil, t, err
	}
}

// reissue submits a transaction signed earlier (its exact bytes) with
// issueTx, serialized with the author's other submissions; the author's
// nonce is asked for again next time.
func (c *Client) reissue(ctx context.Context, t *tx.Tx) (*TxReply, error) {
	a := c.author(t.Author.String())
	a.mu.Lock()
	defer a.mu.Unlock()
	a.known = false
	return c.IssueTx(ctx, t.Bytes())
}
