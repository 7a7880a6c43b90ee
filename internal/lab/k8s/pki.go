package k8s

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// The cluster's PKI, all under <lab>/k8s/pki: one CA signs the API server's serving certificate
// and every client certificate (admin, controller-manager, scheduler, the API server's kubelet
// client, one per node). Kubernetes takes a client certificate's CN as the user name and its O
// as the groups, so a node's certificate (CN system:node:<node name>, O system:nodes) is what the
// Node authorizer and NodeRestriction expect. Certificates rather than a static token file let
// a node join without restarting the API server.

// ca is the cluster's certificate authority.
type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
	dir  string
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func writeKey(path string, k *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}

// newCA creates the CA in dir (ca.crt, ca.key), or loads the one there.
func newCA(dir string) (*ca, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if c, err := loadCA(dir); err == nil {
		return c, nil
	}
	k, err := newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "vpcnet-lab-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, "ca.key"), k); err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, "ca.crt"), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return loadCA(dir)
}

func loadCA(dir string) (*ca, error) {
	cb, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		return nil, err
	}
	cp, _ := pem.Decode(cb)
	kp, _ := pem.Decode(kb)
	if cp == nil || kp == nil {
		return nil, errors.New("ca: bad PEM")
	}
	cert, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(kp.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("ca: key cannot sign")
	}
	return &ca{cert: cert, key: signer, dir: dir}, nil
}

// CertPath returns the CA certificate's path.
func (c *ca) CertPath() string { return filepath.Join(c.dir, "ca.crt") }

// issue writes <name>.crt and <name>.key signed by the CA: a client certificate for cn/orgs,
// and a server certificate too when ips or dns are given.
func (c *ca) issue(name, cn string, orgs []string, ips []netip.Addr, dns []string) (certPath, keyPath string, err error) {
	k, err := newKey()
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, DNSNames: dns}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	if len(ips)+len(dns) > 0 {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, k.Public(), c.key)
	if err != nil {
		return "", "", fmt.Errorf("issue %s: %w", name, err)
	}
	certPath, keyPath = filepath.Join(c.dir, name+".crt"), filepath.Join(c.dir, name+".key")
	if err := writeKey(keyPath, k); err != nil {
		return "", "", err
	}
	return certPath, keyPath, writePEM(certPath, "CERTIFICATE", der, 0o644)
}

// serviceAccountKey writes the key pair the API server signs service account tokens with.
func serviceAccountKey(dir string) (pub, priv string, err error) {
	priv, pub = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if _, err := os.Stat(priv); err == nil {
		return pub, priv, nil
	}
	k, err := newKey()
	if err != nil {
		return "", "", err
	}
	if err := writeKey(priv, k); err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return "", "", err
	}
	return pub, priv, writePEM(pub, "PUBLIC KEY", der, 0o644)
}
