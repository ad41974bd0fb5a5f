package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "scorer test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// scorer serve with serve.tls_cert and tls_key serves HTTPS (and the
// tokens file), refuses to start without a token, and returns nil once
// its context ends (SIGTERM).
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# the test's\ntls-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.Input, cfg.Output, cfg.Model = filepath.Join(dir, "in"), filepath.Join(dir, "out"), "../../testdata/models/ctr-demo"
	cfg.Serve.Addr, cfg.Serve.TLSCert, cfg.Serve.TLSKey = "127.0.0.1:0", certFile, keyFile
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := New(cfg, Options{}).Serve(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "no bearer token") {
		t.Fatalf("serve without a token: %v", err)
	}
	cfg.Serve.TokensFile = tokens
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- New(cfg, Options{}).Serve(ctx, func(a string) { addr <- a }) }()
	var url string
	select {
	case a := <-addr:
		url = "https://" + a
	case err := <-done:
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/requests",
		strings.NewReader(`{"request_id":"tls-1","bid_price":1.5,"ad_width":300,"ad_height":250,"position":1}`))
	req.Header.Set("Authorization", "Bearer tls-token")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST over TLS: %d", resp.StatusCode)
	}
	// Plain HTTP gets net/http's 400 ("an HTTP request to an HTTPS server").
	if resp, err := http.Get("http" + strings.TrimPrefix(url, "https") + "/healthz"); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on a TLS server: %d", resp.StatusCode)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve after its context ended: %v", err)
	}
	objs, _ := filepath.Glob(filepath.Join(dir, "in", "queue", "*.jsonl"))
	if len(objs) != 1 {
		t.Fatalf("queue files %v, want the one batch", objs)
	}
}
