package chat

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the tree to its dependencies: the standard library,
// circl, x/crypto, the module's crypto package and its own packages. Never
// vm, state, service, node or config: chain data reaches it verified by
// the caller.
func TestImports(t *testing.T) {
	allowed := []string{"github.com/cloudflare/circl/", "golang.org/x/crypto/", "github.com/luxfi/session/crypto", "github.com/luxfi/session/chat"}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.Contains(strings.Split(p, "/")[0], ".") {
				continue // standard library
			}
			ok := false
			for _, a := range allowed {
				ok = ok || p == strings.TrimSuffix(a, "/") || strings.HasPrefix(p, a) ||
					(a == "github.com/luxfi/session/crypto" && strings.HasPrefix(p, a+"/"))
			}
			if !ok {
				t.Errorf("%s imports %s", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
