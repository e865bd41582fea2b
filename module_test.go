// Package session_test holds the tests of the repository as a whole: the
// module graph, and the documents at its root (README.md, MIGRATING.md)
// against the code.
package session_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestModuleGraphQuiet runs the go commands that load the whole module
// graph (go list -m all, and go doc, which lists every module's
// directory) and fails on any complaint: the versions the module proxy
// refuses are replaced by empty stand-ins (internal/modstub/README.md).
func TestModuleGraphQuiet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command; skipped with -short")
	}
	for _, args := range [][]string{
		{"list", "-m", "all"},
		{"doc", "./crypto"},
		{"doc", "github.com/luxfi/session/vm.Factory"},
	} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("go", args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() != 0 {
			t.Errorf("go %v: %v\nstderr:\n%s", args, err, stderr.Bytes())
		}
		if stdout.Len() == 0 {
			t.Errorf("go %v printed nothing", args)
		}
	}
}

// modulesOf counts the modules (other than this one) that provide the
// packages go list prints for args.
func modulesOf(t *testing.T, args ...string) int {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps", "-f", "{{with .Module}}{{.Path}}{{end}}"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	seen := map[string]bool{}
	for _, m := range strings.Fields(string(out)) {
		if m != "github.com/luxfi/session" {
			seen[m] = true
		}
	}
	return len(seen)
}

// TestREADMEModuleCounts: the README's figures for what the first run and
// the first test run download are the module graph's.
func TestREADMEModuleCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command; skipped with -short")
	}
	run := modulesOf(t, "./cmd/sessiond")
	all := modulesOf(t, "-test", "./...")
	mustContain(t, "README.md",
		fmt.Sprintf("downloads the dependencies, %d modules", run),
		fmt.Sprintf("downloads the %d modules only the tests use", all-run))
}
