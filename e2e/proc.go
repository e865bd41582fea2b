// Package e2e holds the end-to-end tests of SessionVM: they build the real
// sessiond and sessionctl binaries, run sessiond as a child process on a
// free loopback port with a temporary data directory, and drive it through
// the CLI binary, the typed Go client and raw HTTP.
//
//	go test -race ./e2e/
//
// The race detector instruments the test process only; the child binaries
// are built without it, for speed. This file holds the process helpers.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/vmtest"
)

// BuildBinaries compiles the given main packages (import paths or ./cmd/x
// relative to the module root) into dir with `go build`, run from the
// module root. Without -race: the children only need to be correct, not
// instrumented.
func BuildBinaries(moduleRoot, dir string, pkgs ...string) error {
	args := append([]string{"build", "-o", dir + string(os.PathSeparator)}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// ModuleRoot returns the directory holding go.mod, searching upwards from
// the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("e2e: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// TestGenesis returns a genesis with the default chain configuration but
// the minimal registration work (vmtest.GenesisJSON). The bytes are
// deterministic, so a restart with it is the same chain.
func TestGenesis(t testing.TB) []byte {
	t.Helper()
	b, err := vmtest.GenesisJSON(1767225600, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Process is a sessiond child process.
type Process struct {
	t       testing.TB
	cmd     *exec.Cmd
	URL     string // JSON-RPC endpoint, http://127.0.0.1:<port>/rpc
	DataDir string

	exited  chan struct{} // closed when Wait returns
	waitErr error

	mu   sync.Mutex
	logs []string // the last log lines, for failure reports
}

const keptLogLines = 200

// StartProcess runs `bin --data-dir dataDir --http 127.0.0.1:0 --log-json
// extra...` in its own process group, reads the listen address from its
// "sessiond started" log line and waits until session.health answers.
// Cleanup kills the process group if the test has not stopped it.
//
// Unless extra names a --genesis, the chain is the built-in one with the
// minimal registration work (TestGenesis): these tests register
// identities and are not about the proof of work.
func StartProcess(t testing.TB, bin, dataDir string, extra ...string) *Process {
	t.Helper()
	args := append([]string{"--data-dir", dataDir, "--http", "127.0.0.1:0", "--log-json"}, extra...)
	if !slices.Contains(extra, "--genesis") {
		path := filepath.Join(t.TempDir(), "genesis.json")
		if err := os.WriteFile(path, TestGenesis(t), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--genesis", path)
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{t: t, cmd: cmd, DataDir: dataDir, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("sessiond (%s) log tail:\n%s", dataDir, p.Logs())
		}
	})
	addr := make(chan string, 1)
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs = append(p.logs, line)
			if len(p.logs) > keptLogLines {
				p.logs = p.logs[len(p.logs)-keptLogLines:]
			}
			p.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				HTTP string `json:"http"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "sessiond started" && rec.HTTP != "" {
				select {
				case addr <- rec.HTTP:
				default:
				}
			}
		}
	}()
	go func() {
		<-logsDone // Wait closes the pipe: read it to the end first
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	select {
	case p.URL = <-addr:
	case <-p.exited:
		t.Fatalf("sessiond exited before starting: %v\n%s", p.waitErr, p.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("sessiond did not report its address within 60s\n%s", p.Logs())
	}
	if err := WaitHealthy(p.URL, 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Logs())
	}
	return p
}

// WaitHealthy polls session.health until the node answers healthy.
func WaitHealthy(url string, timeout time.Duration) error {
	c := service.NewClient(url, service.WithTimeout(2*time.Second))
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		h, err := c.Health(context.Background())
		if err == nil && h.Healthy {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("unhealthy: %s", h.Error)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("node %s not healthy after %v: %v", url, timeout, last)
}

// Logs returns the last log lines of the process.
func (p *Process) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process and waits up to timeout for it to exit,
// returning its exit code (-1 when killed by a signal).
func (p *Process) Signal(sig syscall.Signal, timeout time.Duration) (int, error) {
	if !p.Exited() {
		if err := p.cmd.Process.Signal(sig); err != nil && !p.Exited() {
			return 0, err
		}
	}
	select {
	case <-p.exited:
	case <-time.After(timeout):
		return 0, fmt.Errorf("sessiond did not exit within %v of %v", timeout, sig)
	}
	return p.cmd.ProcessState.ExitCode(), nil
}

// Kill kills the whole process group with SIGKILL and waits for the exit.
// It is idempotent.
func (p *Process) Kill() {
	if !p.Exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.t.Errorf("sessiond pid %d still running 10s after SIGKILL", p.cmd.Process.Pid)
	}
}

// CLI runs the sessionctl binary as one user.
type CLI struct {
	Bin        string
	Node       string
	Identity   string // identity file
	Passphrase string
	Home       string
}

// Run runs the CLI with args, a 60 s timeout, and SESSION_NODE,
// SESSION_IDENTITY and SESSION_PASSPHRASE set. It returns stdout, stderr
// and the exit code.
func (c *CLI) Run(args ...string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Bin, args...)
	cmd.Env = []string{
		"SESSION_NODE=" + c.Node,
		"SESSION_IDENTITY=" + c.Identity,
		"SESSION_PASSPHRASE=" + c.Passphrase,
		"HOME=" + c.Home,
		"PATH=" + os.Getenv("PATH"),
	}
	cmd.Stdin = strings.NewReader("")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	var ee *exec.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &ee):
		code = ee.ExitCode()
	default:
		return out.String(), errb.String(), -1, runErr
	}
	if ctx.Err() != nil {
		return out.String(), errb.String(), -1, fmt.Errorf("sessionctl %v: %w", args, ctx.Err())
	}
	return out.String(), errb.String(), code, nil
}
