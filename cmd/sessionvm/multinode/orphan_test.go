package multinode

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	consensusctx "github.com/luxfi/consensus/context"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"
	"github.com/luxfi/metric"
	"github.com/luxfi/node/vms/rpcchainvm"
	lxruntime "github.com/luxfi/node/vms/rpcchainvm/runtime"

	"github.com/luxfi/session/vm/vmtest"
)

// Environment of the host mode of this test binary.
const (
	hostModeEnv   = "SESSIONVM_TEST_HOST_PLUGIN" // the plugin to load
	hostPIDPrefix = "plugin pid "
)

// runHostMode makes this test binary a node that loads the plugin, prints
// the plugin's pid and waits to be killed.
func runHostMode(plugin string) {
	tracker := &pidTracker{}
	f := rpcchainvm.NewFactory(plugin, tracker, lxruntime.NewManager(), metric.NewMultiGatherer())
	vmIface, err := f.New(hostLogger())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	genesis, err := vmtest.GenesisJSON(time.Now().Unix(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	client := vmIface.(*rpcchainvm.VMClient)
	if err := client.Initialize(context.Background(), &consensusctx.Context{ChainID: ids.ID{'o'}, ValidatorState: validatorState{&network{}}}, memdb.New(), genesis, nil, nil, nil, nil, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tracker.mu.Lock()
	fmt.Printf("%s%d\n", hostPIDPrefix, tracker.pids[0])
	tracker.mu.Unlock()
	select {}
}

// exited reports whether pid is gone or a zombie.
func exited(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// TestPluginExitsWhenNodeDies: a node that crashes (SIGKILL) leaves its
// plugin with a database connection that never comes back; the plugin
// notices its parent is gone and exits within seconds instead of serving
// nobody forever.
func TestPluginExitsWhenNodeDies(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin; skipped with -short")
	}
	plugin := buildPlugin(t)
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(), hostModeEnv+"="+plugin)
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	host.Stderr = os.Stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = host.Process.Kill(); _ = host.Wait() }()
	pid := 0
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), hostPIDPrefix); ok {
			if pid, err = strconv.Atoi(rest); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if pid == 0 {
		t.Fatal("the host printed no plugin pid")
	}
	t.Cleanup(func() {
		if !exited(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if exited(pid) {
		t.Fatal("the plugin is not running")
	}
	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for !exited(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin %d still running 20 s after its node was killed", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
