package wsclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// TestTLS: wss:// (and https://) dial over TLS, checking the node's
// certificate against Options.TLSConfig, and the handshake runs inside.
func TestTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "node"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, ln, nil, echo)
	for _, scheme := range []string{"wss", "https"} {
		c := dial(t, scheme+"://"+ln.Addr().String()+"/rpc", Options{TLSConfig: &tls.Config{RootCAs: pool}})
		if resp, err := c.Call(context.Background(), request(1, "tls"), "1"); err != nil || string(resp) != response("1", `"tls"`) {
			t.Fatalf("%s: %s %v", scheme, resp, err)
		}
		c.Close()
	}
	// An unknown certificate is refused.
	_, err = Dial(context.Background(), "wss://"+ln.Addr().String()+"/rpc", Options{})
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unknown certificate: %v", err)
	}
}
