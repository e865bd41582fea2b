package jsvectors

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/luxfi/ids"
	"golang.org/x/crypto/argon2"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/vm/tx"
)

type workParams struct {
	MemoryKiB     int64 `json:"memoryKiB"`
	Iterations    int64 `json:"iterations"`
	PrefilterBits int64 `json:"prefilterBits"`
	WorkBits      int64 `json:"workBits"`
}

type workTry struct {
	Work        string `json:"work"` // decimal u64
	Pre         string `json:"pre"`  // hex: the pre-filter hash (Argon2id password)
	PrefilterOK bool   `json:"prefilterOk"`
	Out         string `json:"out,omitempty"` // hex: the Argon2id output, when the pre-filter passed
	Valid       bool   `json:"valid"`
}

type workVector struct {
	Name    string `json:"name"`
	ChainID string `json:"chainID"`
	Author  int    `json:"author"` // index into identities.json
	// AnchorHeight (decimal u64) and AnchorID (CB58) name the block the
	// work is bound to; Seed (hex) is tx.WorkSeed of chain, author and
	// anchor.
	AnchorHeight string     `json:"anchorHeight"`
	AnchorID     string     `json:"anchorID"`
	Seed         string     `json:"seed"`
	Params       workParams `json:"params"`
	// Start is the first work value a one-worker tx.SolveWork tried; Work
	// is the first valid value from there, after Prefilter BLAKE2b and
	// Argon2 Argon2id evaluations.
	Start     string    `json:"start"`
	Work      string    `json:"work"`
	Prefilter uint64    `json:"prefilterEvaluations"`
	Argon2    uint64    `json:"argon2Evaluations"`
	Tries     []workTry `json:"tries"` // the valid work and a few others, each checked by tx.CheckWork
}

type argon2Vector struct {
	Password   string `json:"password"` // hex
	Salt       string `json:"salt"`     // hex
	MemoryKiB  uint32 `json:"memoryKiB"`
	Iterations uint32 `json:"iterations"`
	Out        string `json:"out"` // hex, 32 bytes, threads 1
}

// zeros counts leading zero bits.
func zeros(b []byte) int {
	n := 0
	for _, x := range b {
		if x != 0 {
			return n + bits.LeadingZeros8(x)
		}
		n += 8
	}
	return n
}

func regParams(p workParams) config.Registration {
	return config.Registration{MemoryKiB: p.MemoryKiB, Iterations: p.Iterations, PrefilterBits: p.PrefilterBits, WorkBits: p.WorkBits, MaxPerBlock: 16}
}

// seedOf is the work seed of author's registration anchored at (h, id).
func seedOf(t *testing.T, chain ids.ID, author int, h uint64, id ids.ID) [32]byte {
	return tx.WorkSeed(chain, sid(t, identity(t, seeds[author]).SessionID), h, id)
}

// try evaluates one work value as a verifier does.
func try(t *testing.T, chain ids.ID, seed [32]byte, p workParams, work uint64) workTry {
	t.Helper()
	reg := regParams(p)
	pre := tx.WorkPre(seed, work)
	ok := tx.PrefilterPasses(pre, reg)
	w := workTry{Work: strconv.FormatUint(work, 10), Pre: hex.EncodeToString(pre[:]), PrefilterOK: ok, Valid: tx.CheckWork(chain, seed, work, reg) == nil}
	if ok {
		w.Out = hex.EncodeToString(argon2.IDKey(pre[:], chain[:], uint32(p.Iterations), uint32(p.MemoryKiB), 1, 32))
	}
	return w
}

// TestWork writes the registration proof-of-work vectors: one-worker
// solves from fixed starting points at small parameters (the SDK's solver
// must find the same value after the same evaluations), a solved work
// value at the default parameters (solved only with -update; otherwise
// read back and checked with tx.CheckWork), and raw Argon2id answers.
func TestWork(t *testing.T) {
	other := ids.ID{1, 2, 3}
	cases := []struct {
		name   string
		chain  ids.ID
		author int
		height uint64
		anchor ids.ID
		p      workParams
		start  uint64
	}{
		{"small: 64 KiB, 8 + 3 bits, anchored at genesis", chainID, 0, 0, ids.ID{0x9e, 1}, workParams{64, 1, 8, 3}, 0},
		{"odd memory and two passes: 37 KiB, 4 + 2 bits", chainID, 1, 4242, ids.ID{0x42, 0x42}, workParams{37, 2, 4, 2}, 1 << 40},
		{"another chain, a large anchor height, the work space wrapping around", other, 2, 1<<53 + 7, ids.ID{0xff, 0xfe}, workParams{16, 1, 6, 2}, ^uint64(0) - 5},
	}
	var out []workVector
	for _, c := range cases {
		seed := seedOf(t, c.chain, c.author, c.height, c.anchor)
		work, stats, err := tx.SolveWork(context.Background(), c.chain, seed, regParams(c.p), 0, c.start, 1)
		if err != nil {
			t.Fatal(err)
		}
		tries := []workTry{try(t, c.chain, seed, c.p, work)}
		for _, w := range []uint64{work - 1, work + 1, c.start} {
			tries = append(tries, try(t, c.chain, seed, c.p, w))
		}
		// The same work anchored one block later is another puzzle.
		later := seedOf(t, c.chain, c.author, c.height+1, c.anchor)
		if tx.CheckWork(c.chain, later, work, regParams(c.p)) == nil && tx.CheckWork(c.chain, seedOf(t, c.chain, c.author, c.height, ids.ID{1}), work, regParams(c.p)) == nil {
			t.Fatalf("%s: the work does not depend on the anchor", c.name)
		}
		// Boundary cases: a pre-filter hash one zero bit short, and one
		// that passes the pre-filter but not Argon2id.
		nearMiss, argonMiss := false, false
		for w := c.start; !nearMiss || !argonMiss; w++ {
			pre := tx.WorkPre(seed, w)
			ok := tx.PrefilterPasses(pre, regParams(c.p))
			switch {
			case !nearMiss && zeros(pre[:]) == int(c.p.PrefilterBits)-1:
				nearMiss = true
				tries = append(tries, try(t, c.chain, seed, c.p, w))
			case !argonMiss && ok && tx.CheckWork(c.chain, seed, w, regParams(c.p)) != nil:
				argonMiss = true
				tries = append(tries, try(t, c.chain, seed, c.p, w))
			}
		}
		if !tries[0].Valid || tries[1].Valid && work-1 >= c.start {
			t.Fatalf("%s: the solve's first valid work is not %d", c.name, work)
		}
		out = append(out, workVector{
			Name: c.name, ChainID: c.chain.String(), Author: c.author, Params: c.p,
			AnchorHeight: strconv.FormatUint(c.height, 10), AnchorID: c.anchor.String(), Seed: hex.EncodeToString(seed[:]),
			Start: strconv.FormatUint(c.start, 10), Work: strconv.FormatUint(work, 10),
			Prefilter: stats.Prefilter, Argon2: stats.Argon2, Tries: tries,
		})
	}

	// The defaults: about a second of one core to solve, so only with -update.
	def := config.DefaultRegistration()
	dp := workParams{def.MemoryKiB, def.Iterations, def.PrefilterBits, def.WorkBits}
	dAnchor := ids.ID{0xa7, 0x11}
	dSeed := seedOf(t, chainID, 0, 17, dAnchor)
	dv := workVector{Name: "the default parameters", ChainID: chainID.String(), Author: 0, Params: dp, Start: "0",
		AnchorHeight: "17", AnchorID: dAnchor.String(), Seed: hex.EncodeToString(dSeed[:])}
	if *update {
		work, stats, err := tx.SolveWork(context.Background(), chainID, dSeed, def, 0, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		dv.Work, dv.Prefilter, dv.Argon2 = strconv.FormatUint(work, 10), stats.Prefilter, stats.Argon2
	} else {
		data, err := os.ReadFile(filepath.Join(dir, "work.json"))
		if err != nil {
			t.Fatalf("%v (run with -update to write it)", err)
		}
		var old struct {
			Defaults workVector `json:"defaults"`
		}
		if err := json.Unmarshal(data, &old); err != nil {
			t.Fatal(err)
		}
		dv.Work, dv.Prefilter, dv.Argon2 = old.Defaults.Work, old.Defaults.Prefilter, old.Defaults.Argon2
	}
	work, err := strconv.ParseUint(dv.Work, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	dv.Tries = []workTry{try(t, chainID, dSeed, dp, work)}
	if !dv.Tries[0].Valid {
		t.Fatalf("work %d is not valid at the default parameters", work)
	}
	other1 := seedOf(t, chainID, 1, 17, dAnchor)
	dv.Tries = append(dv.Tries, try(t, chainID, other1, dp, work)) // another author: (almost surely) invalid
	if dv.Tries[1].Valid {
		t.Fatal("the default work is valid for another author too")
	}

	var a2 []argon2Vector
	for _, c := range []struct {
		pw, salt string
		m, t     uint32
	}{{"password", "somesalt", 8, 1}, {"", "0123456789abcdef", 37, 2}, {"luxfi", "luxfi/session/jsvectors/salt", 1024, 3}} {
		a2 = append(a2, argon2Vector{
			Password: hex.EncodeToString([]byte(c.pw)), Salt: hex.EncodeToString([]byte(c.salt)), MemoryKiB: c.m, Iterations: c.t,
			Out: hex.EncodeToString(argon2.IDKey([]byte(c.pw), []byte(c.salt), c.t, c.m, 1, 32)),
		})
	}
	check(t, "work.json", map[string]any{
		"comment":   "Registration proof of work (vm/tx/work.go, docs/chain.md section 3): seed = BLAKE2b-256(label | chainID | author [33] | anchorHeight u64 | anchorID [32]), pre = BLAKE2b-256(seed | work u64), out = Argon2id(pre, salt chainID, iterations, memoryKiB, 1 thread, 32 bytes). Solves are tx.SolveWork with one worker from start. In defaults, the second try is another author's seed (tries[1].author).",
		"generator": generator,
		"label":     "luxfi/session/v1/register/seed",
		"cases":     out,
		"defaults":  dv,
		"argon2id":  a2,
	})
}
