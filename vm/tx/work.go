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

// Registration proof of work (docs/chain.md section 3):
//
//	seed = BLAKE2b-256("luxfi/session/v1/register/seed" | chainID | author [33] | anchorHeight u64 | anchorID [32])
//	pre  = BLAKE2b-256(seed | work u64)
//	out  = Argon2id(password = pre, salt = chainID, time = iterations,
//	                memory = memoryKiB, threads = 1, length = 32)
//
// A work value is valid when pre has at least prefilterBits leading zero
// bits and out at least workBits. pre is 40 bytes of input, one BLAKE2b
// compression, so a solver pays exactly one compression per attempt; the
// seed binds the chain, the author (a hash of its keys) and a recent block
// (the anchor), so work cannot be reused elsewhere nor stockpiled beyond
// the chain's anchor window. Everything a verifier's Argon2id depends on is
// in pre: verdicts are cached by pre (see package vm).
const workSeedLabel = "luxfi/session/v1/register/seed"

// MaxExcess bounds the excess counted for a registration's priority.
const MaxExcess = 32

// WorkSeed returns the seed of author's registration work on chainID,
// anchored to the block anchorID at anchorHeight.
func WorkSeed(chainID ids.ID, author crypto.SessionID, anchorHeight uint64, anchorID ids.ID) [32]byte {
	b := make([]byte, 0, len(workSeedLabel)+ids.IDLen+33+8+ids.IDLen)
	b = append(b, workSeedLabel...)
	b = append(b, chainID[:]...)
	b = append(b, author.Prefix)
	b = append(b, author.Digest[:]...)
	b = binary.BigEndian.AppendUint64(b, anchorHeight)
	b = append(b, anchorID[:]...)
	return blake2b.Sum256(b)
}

// WorkPre returns the pre-filter hash of work: the Argon2id password.
func WorkPre(seed [32]byte, work uint64) [32]byte {
	var in [40]byte
	copy(in[:32], seed[:])
	binary.BigEndian.PutUint64(in[32:], work)
	return blake2b.Sum256(in[:])
}

// leadingZeros returns the number of leading zero bits of b, counted from
// the most significant bit of b[0].
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

// PrefilterPasses reports whether pre has the pre-filter's leading zero
// bits.
func PrefilterPasses(pre [32]byte, p config.Registration) bool {
	return leadingZeros(pre[:]) >= int(p.PrefilterBits)
}

// Excess returns how many leading zero bits pre has beyond the pre-filter
// (0 if it fails it), at most MaxExcess: a registration's priority when
// registrations compete (docs/chain.md section 3).
func Excess(pre [32]byte, p config.Registration) int {
	return min(max(leadingZeros(pre[:])-int(p.PrefilterBits), 0), MaxExcess)
}

// ArgonPasses evaluates Argon2id once for pre and reports whether its
// output has the chain's leading zero bits. This is the expensive check.
func ArgonPasses(chainID ids.ID, pre [32]byte, p config.Registration) bool {
	return leadingZeros(workArgon2(chainID, pre, p)) >= int(p.WorkBits)
}

func workArgon2(chainID ids.ID, pre [32]byte, p config.Registration) []byte {
	return argon2.IDKey(pre[:], chainID[:], uint32(p.Iterations), uint32(p.MemoryKiB), 1, 32)
}

// CheckWork verifies a registration's work in full: the pre-filter, then
// one Argon2id evaluation. It returns ErrInsufficientWork (wrapped) when
// either falls short. Verifiers run cheaper checks first (package vm).
func CheckWork(chainID ids.ID, seed [32]byte, work uint64, p config.Registration) error {
	pre := WorkPre(seed, work)
	if !PrefilterPasses(pre, p) {
		return fmt.Errorf("%w: pre-filter needs %d leading zero bits", ErrInsufficientWork, p.PrefilterBits)
	}
	if !ArgonPasses(chainID, pre, p) {
		return fmt.Errorf("%w: Argon2id output short of %d leading zero bits", ErrInsufficientWork, p.WorkBits)
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

// SolveWork finds a valid work value for the seed (WorkSeed) on chainID,
// on workers goroutines (0: GOMAXPROCS), each trying its own residue class
// of work values from start. extra asks for that many bits of excess
// beyond the pre-filter (each doubles the expected pre-filter work; a
// client outbids a registration flood with it). It returns the work with
// the evaluation counts, or the context's error.
func SolveWork(ctx context.Context, chainID ids.ID, seed [32]byte, p config.Registration, extra int, start uint64, workers int) (uint64, WorkStats, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	need := int(p.PrefilterBits) + max(extra, 0)
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
			var in [40]byte
			copy(in[:32], seed[:])
			for i, n := uint64(w), 0; !found.Load(); i += uint64(workers) {
				if n++; n%512 == 0 && ctx.Err() != nil {
					return
				}
				work := start + i
				binary.BigEndian.PutUint64(in[32:], work)
				h := blake2b.Sum256(in[:])
				pre.Add(1)
				if leadingZeros(h[:]) >= need {
					arg.Add(1)
					if ArgonPasses(chainID, h, p) {
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
