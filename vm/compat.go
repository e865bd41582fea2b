package vm

import (
	"reflect"
	"strings"
	"time"

	"github.com/luxfi/ids"
)

// Session statuses as strings, the values of Session.Status (the
// reference implementation's names). SessionPending is never reported: a
// session exists once the block creating it is accepted, and is active
// from then on.
const (
	SessionPending = "pending"
	SessionActive  = "active"
	SessionExpired = "expired"
	SessionClosed  = "closed"
)

// Session is a session as GetSession reports it, shaped after the
// reference implementation's Session (ID and Status have the same names
// and types). Participants are Session IDs ("07…"), not the reference's
// 32-byte ids.ID; their public keys are the registered identities
// (API.Identity), not a copy in the session.
type Session struct {
	ID           ids.ID    `json:"id"`
	Creator      string    `json:"creator"`
	Participants []string  `json:"participants"` // Session IDs, the creator first
	Metadata     []byte    `json:"metadata"`     // public, set by the creator
	Created      time.Time `json:"created"`      // time of the creating block
	Expires      time.Time `json:"expires"`
	Status       string    `json:"status"`  // SessionActive, SessionClosed or SessionExpired
	LastSeq      uint64    `json:"lastSeq"` // sequence number of the latest message
}

// GetSession returns a session with its status at the last accepted
// block's time, as the reference implementation's GetSession did; an
// unknown session gives an error matching state.ErrNotFound. Session
// returns the same record in the chain's own types.
func (v *VM) GetSession(sessionID ids.ID) (*Session, error) {
	info, err := v.Session(sessionID)
	if err != nil {
		return nil, err
	}
	s := &Session{
		ID:           info.ID,
		Creator:      info.Creator.String(),
		Participants: make([]string, len(info.Participants)),
		Metadata:     info.Metadata,
		Created:      time.UnixMilli(info.CreatedAt).UTC(),
		Expires:      time.UnixMilli(info.ExpiresAt).UTC(),
		Status:       info.Status.String(),
		LastSeq:      info.LastSeq,
	}
	for i, p := range info.Participants {
		s.Participants[i] = p.String()
	}
	return s, nil
}

// Map returns the report as a map keyed by the JSON field names, with the
// fields' Go values ("healthy" is a bool, "height" a uint64, "disk" a
// *DiskReport, ...). It holds the fields the report's JSON holds (an empty
// omitempty field is left out, as encoding/json does), so what the JSON of
// session.health and /health shows, HealthCheck's map shows too.
func (r HealthReport) Map() map[string]interface{} {
	v := reflect.ValueOf(r)
	t := v.Type()
	m := make(map[string]interface{}, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fv := v.Field(i)
		if (strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")) && fv.IsZero() {
			continue // as encoding/json leaves it out
		}
		m[name] = fv.Interface()
	}
	return m
}
