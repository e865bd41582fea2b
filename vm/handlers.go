package vm

import (
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gorilla/rpc/v2"
	"github.com/gorilla/rpc/v2/json2"
)

// maxRPCBody bounds a JSON-RPC request body.
const maxRPCBody = 1 << 20

// newRPCHandler returns the minimal JSON-RPC 2.0 handler of the VM:
// session.health and session.status. The service package replaces it with
// the full API, built on the API interface.
func newRPCHandler(v *VM) (http.Handler, error) {
	s := rpc.NewServer()
	codec := lowerCaseCodec{json2.NewCodec()}
	s.RegisterCodec(codec, "application/json")
	s.RegisterCodec(codec, "application/json;charset=UTF-8")
	if err := s.RegisterService(&minimalService{vm: v}, "session"); err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRPCBody)
		s.ServeHTTP(w, r)
	}), nil
}

// lowerCaseCodec lets clients call "session.health" for the Go method
// Health: gorilla/rpc matches method names exactly.
type lowerCaseCodec struct{ *json2.Codec }

func (c lowerCaseCodec) NewRequest(r *http.Request) rpc.CodecRequest {
	return lowerCaseRequest{c.Codec.NewRequest(r)}
}

type lowerCaseRequest struct{ rpc.CodecRequest }

func (r lowerCaseRequest) Method() (string, error) {
	m, err := r.CodecRequest.Method()
	if err != nil {
		return m, err
	}
	svc, name, ok := strings.Cut(m, ".")
	if !ok || name == "" {
		return m, nil
	}
	first, size := utf8.DecodeRuneInString(name)
	return svc + "." + string(unicode.ToUpper(first)) + name[size:], nil
}

type minimalService struct{ vm *VM }

// EmptyArgs are the arguments of methods without parameters.
type EmptyArgs struct{}

// HealthReply is the reply of session.health.
type HealthReply struct {
	HealthReport
}

// Health is session.health.
func (s *minimalService) Health(r *http.Request, _ *EmptyArgs, reply *HealthReply) error {
	rep, err := s.vm.Health(r.Context())
	reply.HealthReport = rep
	return err
}

// StatusReply is the reply of session.status.
type StatusReply struct {
	ChainID          string `json:"chainID"`
	LastAcceptedID   string `json:"lastAcceptedID"`
	Height           uint64 `json:"height"`
	LastAcceptedTime int64  `json:"lastAcceptedTime"`
	MempoolTxs       int    `json:"mempoolTxs"`
	MempoolBytes     int    `json:"mempoolBytes"`
	ProcessingBlocks int    `json:"processingBlocks"`
	AcceptedTxs      uint64 `json:"acceptedTxs"`
	Identities       uint64 `json:"identities"`
	Sessions         uint64 `json:"sessions"`
	Channels         uint64 `json:"channels"`
	MessagesStored   uint64 `json:"messagesStored"`
	MessagesTotal    uint64 `json:"messagesTotal"`
	MessagesPruned   uint64 `json:"messagesPruned"`
}

// Status is session.status.
func (s *minimalService) Status(_ *http.Request, _ *EmptyArgs, reply *StatusReply) error {
	st, err := s.vm.Status()
	if err != nil {
		return err
	}
	*reply = StatusReply{
		ChainID:          st.ChainID.String(),
		LastAcceptedID:   st.LastAcceptedID.String(),
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
