package session_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/node"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
)

// goBlock is a ```go block of a Markdown file.
type goBlock struct {
	file  string
	line  int
	lines []string
}

func goBlocks(t *testing.T, file string) []goBlock {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []goBlock
	lines := strings.Split(string(raw), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		b := goBlock{file: file, line: i + 1}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			b.lines = append(b.lines, lines[i])
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// normalize trims a line and collapses runs of blanks, so that gofmt's
// alignment of trailing comments does not matter.
func normalize(l string) string { return strings.Join(strings.Fields(l), " ") }

// example is the source of an Example function.
type example struct {
	name  string // file:Name
	lines []string
	file  *example // the whole file that declares it
}

// examples returns every Example function of the module's test files.
func examples(t *testing.T) []example {
	t.Helper()
	var out []example
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") && path != ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			return err
		}
		whole := &example{name: path, lines: strings.Split(string(src), "\n")}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Example") || fn.Body == nil {
				continue
			}
			body := src[fset.Position(fn.Body.Lbrace).Offset:fset.Position(fn.Body.Rbrace).Offset]
			out = append(out, example{name: path + ":" + fn.Name.Name, lines: strings.Split(string(body), "\n"), file: whole})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// contains reports whether every line of snippet appears in ex, in order
// (other lines, such as error checks, may come between them).
func (ex example) contains(snippet []string) bool {
	j := 0
	for _, l := range snippet {
		want := normalize(l)
		if want == "" || strings.HasPrefix(want, "import ") {
			continue
		}
		for j < len(ex.lines) && normalize(ex.lines[j]) != want {
			j++
		}
		if j == len(ex.lines) {
			return false
		}
		j++
	}
	return true
}

// TestREADMESnippets: every Go snippet of README.md and MIGRATING.md is
// part of an Example function (which go test compiles and runs), line by
// line and in order, so no snippet can drift from the API. MIGRATING.md's
// snippets may also be the helpers such an Example calls: the whole
// Example test file counts.
func TestREADMESnippets(t *testing.T) {
	exs := examples(t)
	if len(exs) == 0 {
		t.Fatal("no Example functions found")
	}
	for _, file := range []string{"README.md", "MIGRATING.md"} {
		blocks := goBlocks(t, file)
		if len(blocks) == 0 {
			t.Errorf("%s has no Go snippets", file)
		}
		for _, b := range blocks {
			found := ""
			for _, ex := range exs {
				if ex.contains(b.lines) || file == "MIGRATING.md" && ex.file.contains(b.lines) {
					found = ex.name
					break
				}
			}
			if found == "" {
				t.Errorf("%s:%d: this Go snippet is not part of any Example function:\n%s", b.file, b.line, strings.Join(b.lines, "\n"))
			} else {
				t.Logf("%s:%d is in %s", b.file, b.line, found)
			}
		}
	}
}

// mustContain fails unless file contains each of the strings.
func mustContain(t *testing.T, file string, want ...string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := normalize(string(raw))
	for _, w := range want {
		if !strings.Contains(text, normalize(w)) {
			t.Errorf("%s does not say %q (the code's value)", file, w)
		}
	}
}

// mustNotContain fails if file contains any of the strings.
func mustNotContain(t *testing.T, file string, bad ...string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		if strings.Contains(string(raw), b) {
			t.Errorf("%s says %q", file, b)
		}
	}
}

func kib(n int) string { return fmt.Sprintf("%d KiB", n>>10) }

// TestDocNumbers checks the numbers the documents state against the
// values in the code (and in the Lux node module the plugin is built
// with).
func TestDocNumbers(t *testing.T) {
	def := config.Default()
	mustContain(t, "README.md",
		"`"+node.DefaultHTTPAddr+"`",
		fmt.Sprintf("%d, %d, %d, %d", def.SessionTTL, def.MaxMessages, def.MaxChannels, def.RetentionDays),
		fmt.Sprintf("`sessionTTL` %d s", def.SessionTTL),
		fmt.Sprintf("`maxMessages` %d per session", def.MaxMessages),
		fmt.Sprintf("`maxChannels` %d", def.MaxChannels),
		fmt.Sprintf("`retentionDays` %d", def.RetentionDays),
		fmt.Sprintf("`idPrefix` %q", def.IDPrefix),
		"`"+node.DefaultBuildDelay.String()+"`",
		vm.VMID.String(),
		fmt.Sprintf("%d characters", crypto.SessionIDLength),
	)
	if time := node.DefaultGenesisTimestamp; time != 1767225600 {
		t.Errorf("DefaultGenesisTimestamp %d is not 2026-01-01 UTC", time)
	}
	// The message size limits of sessionctl (README): the protocol's for
	// sessions, Seal's for channel posts.
	mustContain(t, "README.md", fmt.Sprintf("at most %s bytes of text", commas(chat.MaxPlaintextSize)))
	for _, n := range []int{2, 10, 50} {
		mustContain(t, "README.md", fmt.Sprintf("%s bytes with %d members", commas(config.MaxCiphertextSize-crypto.SealOverhead(n)), n))
	}

	mustContain(t, "docs/api.md",
		fmt.Sprintf("**%d MiB**", service.MaxBodySize>>20),
		fmt.Sprintf("(%s)", kib(config.MaxTxSize)),
		fmt.Sprintf("about %d KiB in base64", ((config.MaxTxSize+2)/3*4+512)>>10),
		fmt.Sprintf("0 (meaning %d) to %d", service.DefaultPageSize, service.MaxPageSize),
		fmt.Sprintf("at most %d)", config.MaxParticipants-1),
		fmt.Sprintf("up to %s of public\nmetadata", kib(config.MaxMetadataSize)),
		fmt.Sprintf("(1 byte to %s)", kib(config.MaxCiphertextSize)),
		fmt.Sprintf("%d MiB of ciphertext", vm.MaxPageBytes>>20),
		fmt.Sprintf("1 to %d bytes of UTF-8", config.MaxChannelNameSize),
		fmt.Sprintf("up to %d members", config.MaxChannelMembers),
		fmt.Sprintf("default %d minutes", int(service.DefaultWaitTimeout.Minutes())),
		"http://"+node.DefaultHTTPAddr+"/rpc",
	)
	// getConfig's documented values are the chain's defaults and bounds.
	raw, _ := os.ReadFile("docs/api.md")
	doc := string(raw)
	i := strings.Index(doc, "### session.getConfig")
	j := strings.Index(doc[i:], "```json")
	k := strings.Index(doc[i+j+7:], "```")
	var got map[string]any
	if err := json.Unmarshal([]byte(doc[i+j+7:i+j+7+k]), &got); err != nil {
		t.Fatalf("getConfig example: %v", err)
	}
	res := got["result"].(map[string]any)
	for name, want := range map[string]float64{
		"sessionTTL": float64(def.SessionTTL), "maxMessages": float64(def.MaxMessages), "maxChannels": float64(def.MaxChannels),
		"retentionDays": float64(def.RetentionDays), "maxCiphertextSize": config.MaxCiphertextSize, "maxMetadataSize": config.MaxMetadataSize,
		"maxParticipants": config.MaxParticipants, "maxChannelNameSize": config.MaxChannelNameSize, "maxChannelMembers": config.MaxChannelMembers,
		"maxTxSize": config.MaxTxSize, "maxPageSize": service.MaxPageSize, "maxBodySize": service.MaxBodySize,
	} {
		if res[name] != want {
			t.Errorf("docs/api.md getConfig example: %s = %v, the code says %v", name, res[name], want)
		}
	}
	// Its registration work, rate limits and prekey rules are the
	// defaults too.
	for name, v := range map[string]any{"registration": def.Registration, "rateLimits": def.RateLimits, "prekeys": def.Prekeys} {
		b, _ := json.Marshal(v)
		var want any
		_ = json.Unmarshal(b, &want)
		if !reflect.DeepEqual(res[name], want) {
			t.Errorf("docs/api.md getConfig example: %s = %v, the code says %s", name, res[name], b)
		}
	}

	mustContain(t, "LLM.md",
		fmt.Sprintf("| ML-KEM-768 public key (ek) | %d |", crypto.KEMPublicKeySize),
		fmt.Sprintf("| ML-KEM-768 secret key, expanded (dk) / seed (d‖z) | %d / %d |", crypto.KEMSecretKeySize, crypto.KEMSeedSize),
		fmt.Sprintf("| ML-KEM-768 ciphertext / shared secret | %d / %d |", crypto.KEMCiphertextSize, crypto.KEMSharedSecretSize),
		fmt.Sprintf("| ML-DSA-65 public key | %d |", crypto.DSAPublicKeySize),
		fmt.Sprintf("| ML-DSA-65 secret key, expanded (skEncode) / seed (ξ) | %d / %d |", crypto.DSASecretKeySize, crypto.DSASeedSize),
		fmt.Sprintf("| ML-DSA-65 signature | %d |", crypto.SignatureSize),
		fmt.Sprintf("| XChaCha20-Poly1305 key / nonce / tag | %d / %d / %d |", crypto.KeySize, crypto.NonceSize, crypto.TagSize),
		fmt.Sprintf("%s bytes of\noverhead for one recipient", commas(crypto.SealOverhead(1))),
		fmt.Sprintf("ciphertext %s, %d participants, metadata %s, channel name\n%d bytes, %d channel members, tx %s, block %d MiB / %d txs, %d\nmessages pruned per block",
			kib(config.MaxCiphertextSize), config.MaxParticipants, kib(config.MaxMetadataSize), config.MaxChannelNameSize,
			config.MaxChannelMembers, kib(config.MaxTxSize), config.MaxBlockSize>>20, config.MaxBlockTxs, config.MaxPrunePerBlock),
		fmt.Sprintf("%d s of proposer clock drift", config.MaxFutureBlockTime/1000),
		vm.VMID.String(),
	)

	// The port of a Lux node, from the node module the plugin is built
	// with (its config package cannot be imported here: it needs modules
	// the proxy refuses).
	port := luxdHTTPPort(t)
	for _, f := range []string{"README.md", "docs/api.md", "LLM.md", "MIGRATING.md"} {
		mustNotContain(t, f, ":9650", "9650/")
	}
	mustContain(t, "docs/api.md", fmt.Sprintf("http://<node>:%d/ext/bc/<chainID>/rpc", port))
}

// luxdHTTPPort reads DefaultHTTPPort from github.com/luxfi/node's
// config/flags.go in the module cache.
func luxdHTTPPort(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/luxfi/node").Output()
	if err != nil {
		t.Fatalf("locating github.com/luxfi/node: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(string(bytes.TrimSpace(out)), "config", "flags.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`DefaultHTTPPort\s*=\s*(\d+)`).FindSubmatch(src)
	if m == nil {
		t.Fatal("DefaultHTTPPort not found in luxfi/node config/flags.go")
	}
	port, _ := strconv.Atoi(string(m[1]))
	return port
}

// commas formats n with thousands separators.
func commas(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}
