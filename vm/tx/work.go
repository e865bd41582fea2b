package tx

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/luxfi/ids"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/blake2b"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
)

// Registration proof of work (docs/chain.md section 3). With
// seed = chainID | author:
//
//	pre = BLAKE2b-256("luxfi/session/v1/register/prefilter" | seed | work u64)
//	out = Argon2id(password = pre, salt = chainID, time = iterations,
//	               memory = memoryKiB, threads = 1, length = 32)
//
// A work value is valid when pre has at least prefilterBits leading zero
// bits and out at least workBits. The pre-filter makes every Argon2id
// evaluation a verifier runs cost the sender 2^prefilterBits BLAKE2b
// evaluations first.
const workPrefilterLabel = "luxfi/session/v1/register/prefilter"

// workInputSize is the size of the pre-filter's input.
const workInputSize = len(workPrefilterLabel) + ids.IDLen + 33 + 8

// workInput returns the pre-filter input with work 0 (its last 8 bytes).
func workInput(chainID ids.ID, author crypto.SessionID) []byte {
	b := make([]byte, 0, workInputSize)
	b = append(b, workPrefilterLabel...)
	b = append(b, chainID[:]...)
	b = append(b, author.Prefix)
	b = append(b, author.Digest[:]...)
	return append(b, make([]byte, 8)...)
}

// leadingZeros returns the number of leading zero bits of b.
func leadingZeros(b []byte) int {
	n := 0
	for _, x := range b {
		if x != 0 {
			return n + bits.LeadingZeros8(x)
		}
		n += 8
	}
	return n
}

// WorkPrefilter reports whether work passes the cheap BLAKE2b pre-filter,
// and returns the pre-filter hash (the Argon2id password).
func WorkPrefilter(chainID ids.ID, author crypto.SessionID, work uint64, p config.Registration) ([32]byte, bool) {
	in := workInput(chainID, author)
	binary.BigEndian.PutUint64(in[len(in)-8:], work)
	pre := blake2b.Sum256(in)
	return pre, leadingZeros(pre[:]) >= int(p.PrefilterBits)
}

// workArgon2 returns the Argon2id output for a pre-filter hash.
func workArgon2(chainID ids.ID, pre [32]byte, p config.Registration) []byte {
	return argon2.IDKey(pre[:], chainID[:], uint32(p.Iterations), uint32(p.MemoryKiB), 1, 32)
}

// CheckWork verifies a registration's work in full: the pre-filter, then
// one Argon2id evaluation. It returns ErrInsufficientWork (wrapped) when
// either falls short. Verifiers run the pre-filter (WorkPrefilter) first
// and the signature before this, so a bogus registration costs its sender
// the pre-filter's work before a node evaluates Argon2id.
func CheckWork(chainID ids.ID, author crypto.SessionID, work uint64, p config.Registration) error {
	pre, ok := WorkPrefilter(chainID, author, work, p)
	if !ok {
		return fmt.Errorf("%w: pre-filter needs %d leading zero bits", ErrInsufficientWork, p.PrefilterBits)
	}
	if n := leadingZeros(workArgon2(chainID, pre, p)); n < int(p.WorkBits) {
		return fmt.Errorf("%w: Argon2id output has %d leading zero bits, needs %d", ErrInsufficientWork, n, p.WorkBits)
	}
	return nil
}

// WorkStats counts the evaluations a solve took.
type WorkStats struct {
	Prefilter uint64 // BLAKE2b pre-filter evaluations
	Argon2    uint64 // Argon2id evaluations
}

// ErrNoWorkFound is returned by SolveWork when the whole work space was
// tried (impossible in practice at the allowed difficulties).
var ErrNoWorkFound = errors.New("tx: no work value satisfies the registration difficulty")

// SolveWork finds a valid work value for author's registration on chainID,
// on workers goroutines (0: GOMAXPROCS), each trying its own residue class
// of work values from start. It returns the work with the evaluation
// counts, or the context's error.
func SolveWork(ctx context.Context, chainID ids.ID, author crypto.SessionID, p config.Registration, start uint64, workers int) (uint64, WorkStats, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		found    atomic.Bool
		result   uint64
		pre, arg atomic.Uint64
		once     sync.Once
		wg       sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			in := workInput(chainID, author)
			for i, n := uint64(w), 0; !found.Load(); i += uint64(workers) {
				if n++; n%512 == 0 && ctx.Err() != nil {
					return
				}
				work := start + i
				binary.BigEndian.PutUint64(in[len(in)-8:], work)
				h := blake2b.Sum256(in)
				pre.Add(1)
				if leadingZeros(h[:]) >= int(p.PrefilterBits) {
					arg.Add(1)
					if leadingZeros(workArgon2(chainID, h, p)) >= int(p.WorkBits) {
						once.Do(func() { result = work; found.Store(true) })
						return
					}
					if ctx.Err() != nil {
						return
					}
				}
				if i+uint64(workers) < i { // the work space is exhausted
					return
				}
			}
		}(w)
	}
	wg.Wait()
	stats := WorkStats{Prefilter: pre.Load(), Argon2: arg.Load()}
	if found.Load() {
		return result, stats, nil
	}
	if err := ctx.Err(); err != nil {
		return 0, stats, err
	}
	return 0, stats, ErrNoWorkFound
}
