package service

import (
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestBoundListener: a connection beyond the bound waits for a slot; one
// idle (as the server reports) is closed for it, the one idle longest
// first, and only when a newcomer waits; Close ends a waiting Accept.
func TestBoundListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := BoundListener(inner, 2, 0)
	hook := ConnStateHook(l)
	if hook == nil || ConnStateHook(inner) != nil || ConnStateHook(BoundListener(inner, 0, 0)) != nil {
		t.Fatal("ConnStateHook: a hook only for a bounded listener")
	}
	accept := func() (net.Conn, error) {
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() { c, err := l.Accept(); ch <- res{c, err} }()
		d, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		select {
		case r := <-ch:
			return r.c, r.err
		case <-time.After(300 * time.Millisecond):
			r := <-ch // waits: the caller frees a slot or closes l
			return r.c, r.err
		}
	}
	closed := func(c net.Conn) bool {
		_, err := c.Write([]byte("x"))
		return errors.Is(err, net.ErrClosed)
	}

	a, _ := accept()
	b, _ := accept()
	hook(a, http.StateActive)
	hook(b, http.StateIdle)
	hook(a, http.StateIdle) // a idle, after b
	time.Sleep(50 * time.Millisecond)
	if closed(a) || closed(b) {
		t.Fatal("an idle connection was closed with nobody waiting")
	}
	c, err := accept() // full: b, idle longest, makes room
	if err != nil || !closed(b) || closed(a) {
		t.Fatalf("third connection: %v; b closed %v, a closed %v", err, closed(b), closed(a))
	}
	hook(c, http.StateActive)
	hook(a, http.StateActive) // none idle: the next one waits
	go func() {
		time.Sleep(100 * time.Millisecond)
		hook(a, http.StateIdle) // until one becomes idle
	}()
	d, err := accept()
	if err != nil || !closed(a) {
		t.Fatalf("fourth connection: %v; a closed %v", err, closed(a))
	}
	hook(d, http.StateActive)
	go func() {
		time.Sleep(100 * time.Millisecond)
		l.Close()
	}()
	if _, err := accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept waiting for a slot after Close: %v", err)
	}
}
