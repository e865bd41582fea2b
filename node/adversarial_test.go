package node

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/luxfi/session/service"
)

// The attacks of an anonymous client on the network against the node's
// HTTP side (connections, Host, Origin, the web UI, /metrics, /health):
// each test makes the requests a stranger can make and asserts the bound
// or the refusal. The handler's own bounds are tested in package service.

// rawRequest writes a request on a new connection and returns the
// connection with a reader positioned at the response.
func rawRequest(t *testing.T, n *Node, req string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func statusPOST(host string) string {
	return "POST /rpc HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(statusBody)) + "\r\n\r\n" + statusBody
}

// TestIdleKeepAliveConnsMakeRoom: connections idle between requests
// (keep-alive) hold no slot a new client needs: when all --http-max-conns
// are open, the one idle longest is closed for the newcomer. Before, 1024
// idle connections, each sending a request every two minutes (the idle
// timeout), kept every other client out.
func TestIdleKeepAliveConnsMakeRoom(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{MaxConns: 2}})
	var idle []net.Conn
	for range 2 {
		c, rd := rawRequest(t, n, statusPOST("localhost"))
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		idle = append(idle, c)
	}
	quick := service.NewClient(n.URL(), service.WithTimeout(3*time.Second))
	for i := range 3 {
		if _, err := quick.Status(context.Background()); err != nil {
			t.Fatalf("call %d with the connections held idle: %v", i, err)
		}
	}
	// The idle connections were closed to make room.
	_ = idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection idle longest still open")
	}

	// Connections in the middle of a request are not idle: they keep
	// their slots (until the header and read timeouts end them).
	busy := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{MaxConns: 2}})
	for range 2 {
		rawRequest(t, busy, "POST /rpc HTTP/1.1\r\nHost: localhost\r\n") // headers never end
	}
	time.Sleep(100 * time.Millisecond)
	blocked := service.NewClient(busy.URL(), service.WithTimeout(500*time.Millisecond))
	if _, err := blocked.Status(context.Background()); err == nil {
		t.Fatal("served while both connections were in the middle of a request")
	}
}
