package service

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// checkDecodeBase64 requires decodeBase64 to give what
// base64.StdEncoding.Decode gives: n, the bytes, the error (offset
// included).
func checkDecodeBase64(t testing.TB, src []byte) {
	t.Helper()
	want := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	wn, werr := base64.StdEncoding.Decode(want, src)
	got := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	gn, gerr := decodeBase64(got, src)
	if gn != wn || !bytes.Equal(got[:gn], want[:wn]) || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
		t.Fatalf("%.80q: decodeBase64 %d, %v, %x; StdEncoding %d, %v, %x", src, gn, gerr, got[:gn], wn, werr, want[:wn])
	}
}

func base64Corpus() []string {
	r := rand.New(rand.NewPCG(3, 4))
	var out []string
	for n := range 64 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		enc := base64.StdEncoding.EncodeToString(b)
		out = append(out, enc, enc+"=", enc+"A", strings.TrimRight(enc, "="))
		for _, bad := range []string{"=", "*", "\n", "\r", "-", "_", " ", "\x00", "\xff", "é"} {
			for _, at := range []int{0, len(enc) / 3, len(enc) / 2, len(enc) - 1} {
				if at >= 0 && at <= len(enc) {
					out = append(out, enc[:at]+bad+enc[at:])
					if at < len(enc) {
						out = append(out, enc[:at]+bad+enc[at+1:])
					}
				}
			}
		}
	}
	big := make([]byte, 3676)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(big)
	out = append(out, enc, enc[:len(enc)-4], enc[:100]+"\n"+enc[100:], enc[:4000]+"=="+enc[4002:])
	return out
}

func TestDecodeBase64(t *testing.T) {
	for _, s := range base64Corpus() {
		checkDecodeBase64(t, []byte(s))
	}
}

func FuzzDecodeBase64(f *testing.F) {
	for _, s := range base64Corpus()[:400] {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		checkDecodeBase64(t, src)
	})
}

func BenchmarkDecodeBase64(b *testing.B) {
	raw := make([]byte, 3676)
	for i := range raw {
		raw[i] = byte(i*7 + 3)
	}
	enc := []byte(base64.StdEncoding.EncodeToString(raw))
	dst := make([]byte, len(raw)+2)
	b.Run("service", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			_, _ = decodeBase64(dst, enc)
		}
	})
	b.Run("StdEncoding", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			_, _ = base64.StdEncoding.Decode(dst, enc)
		}
	})
}
