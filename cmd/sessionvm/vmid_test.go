package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/vm/genesis"
)

// The VM ID a node looks the plugin up by. Changing it orphans every
// installed plugin and every chain created with it.
const wantVMID = "speKUgLBX6WRD5cfGeEfLa43LxTXUBckvtv4td6F3eTXvRP48"

func TestVMID(t *testing.T) {
	want := ids.ID{'s', 'e', 's', 's', 'i', 'o', 'n', 'v', 'm'}
	if VMID() != want {
		t.Fatalf("VMID() = %x, want %x", VMID(), want)
	}
	if got := VMID().String(); got != wantVMID {
		t.Fatalf("VMID().String() = %s, want %s", got, wantVMID)
	}
	parsed, err := ids.FromString(wantVMID)
	if err != nil || parsed != want {
		t.Fatalf("ids.FromString(%s) = %x, %v", wantVMID, parsed, err)
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--vm-id"}, 0, wantVMID + "\n"},
		{[]string{"--version"}, 0, "sessionvm/"},
		{[]string{"--bogus"}, 2, ""},
		{[]string{"extra"}, 2, ""},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.HasPrefix(stdout.String(), tc.out) {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q", tc.args, code, stdout.String(), stderr.String())
		}
	}
	// Started by hand (no runtime engine address), it explains itself on
	// stderr and writes nothing to stdout.
	t.Setenv("LUX_VM_RUNTIME_ENGINE_ADDR", "")
	var stdout, stderr bytes.Buffer
	if code := run(nil, &stdout, &stderr); code != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), wantVMID) {
		t.Errorf("run() without a node = %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// exampleGenesis is the example genesis the README points operators to.
const exampleGenesis = "../../genesis.example.json"

// testGenesis returns the example genesis with the minimal registration
// work (config.MinimalRegistration): these tests register identities and
// are not about the proof of work.
func testGenesis(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(exampleGenesis)
	if err != nil {
		t.Fatal(err)
	}
	var g map[string]any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	cfg, _ := g["config"].(map[string]any)
	if cfg == nil {
		cfg = map[string]any{}
	}
	cfg["registration"] = config.MinimalRegistration()
	g["config"] = cfg
	out, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExampleGenesis(t *testing.T) {
	b, err := os.ReadFile(exampleGenesis)
	if err != nil {
		t.Fatal(err)
	}
	g, err := genesis.Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", exampleGenesis, err)
	}
	if g.Timestamp != 1767225600 || g.Config.SessionTTL != 86400 || g.Config.RetentionDays != 30 {
		t.Fatalf("%s parsed as %+v", exampleGenesis, g)
	}
}
