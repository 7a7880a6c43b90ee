package k8s

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vpcnet/vpcnet/internal/probe"
)

// RunAPIProxy forwards TCP connections from 127.0.0.1 in the machine's own namespace (a free
// port, written to portFile) to target inside the named namespace: the API server listens in
// the lab's router namespace, and this lets `KUBECONFIG=$(vpcnet lab kubeconfig) kubectl`
// reach it with nothing added to the machine's network but a loopback socket. TLS passes
// through untouched. It runs until ctx ends.
func RunAPIProxy(ctx context.Context, ns, target, portFile string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if err := os.WriteFile(portFile+".tmp", []byte(strconv.Itoa(port)), 0o600); err != nil {
		return err
	}
	if err := os.Rename(portFile+".tmp", portFile); err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	dial := probe.Dialer(ns)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			u, err := dial(dctx, "tcp", target)
			cancel()
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(u, c); closeWrite(u); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, u); closeWrite(c); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

func closeWrite(c net.Conn) {
	if t, ok := c.(*net.TCPConn); ok {
		_ = t.CloseWrite()
	}
}

// startProxy starts the API proxy (detached, in the machine's namespace) and writes the admin
// kubeconfig that uses it.
func startProxy(ctx context.Context, p Paths, router string, pki *ca, local string) error {
	_ = os.Remove(p.ProxyPort())
	logf, err := os.OpenFile(p.Log("apiproxy"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(Self(), "lab", "k8s", "apiproxy", "--netns", router, "--target", strings.TrimPrefix(local, "https://"), "--port-file", p.ProxyPort())
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", marker(p.labDir(), "apiproxy")}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the API proxy: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(p.ProxyPort())
		if err == nil {
			port, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				return fmt.Errorf("%s: %w", p.ProxyPort(), err)
			}
			return writeKubeconfig(p.Kubeconfig(), fmt.Sprintf("https://127.0.0.1:%d", port), pki.CertPath(),
				filepath.Join(p.PKI(), "admin.crt"), filepath.Join(p.PKI(), "admin.key"), "kubernetes-admin")
		}
		if time.Now().After(deadline) {
			return errors.New("the API proxy did not start (see " + p.Log("apiproxy") + ")")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// loadPool reads a PEM CA bundle.
func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: no certificate", path)
	}
	return pool, nil
}
