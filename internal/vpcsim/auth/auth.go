// Package auth is vpcsim's EC2 authentication: the credentials vpcsim issues and the SigV4
// check of every EC2 request against them, as EC2 does.
//
// Three kinds of credentials exist:
//   - the operator's long-term access key (AKIA…, no session token): it may call every action;
//   - web identity session credentials (ASIA…), issued by vpcsim's STS for a token of its
//     own issuer (WebIdentityToken), derived as the role credentials below are;
//   - per-instance role credentials (ASIA…, with a session token), served by IMDS under
//     iam/security-credentials/ROLE. They are derived from a key vpcsim keeps (auth.json in its
//     state directory), the instance ID and the time window they were issued in, so a restarted
//     vpcsim still accepts what it issued before, and they expire as EC2's do.
//
// The signature is recomputed with aws-sdk-go-v2's SigV4 signer over the headers the caller
// says it signed and compared in constant time; no signing code of our own.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Credentials is an access key pair, with the session token of temporary credentials.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string `json:",omitempty"`
}

// RoleCredentials are an instance role's temporary credentials as IMDS serves them.
type RoleCredentials struct {
	Credentials
	LastUpdated time.Time // start of the window they were issued in
	Expiration  time.Time
}

// Caller is who signed a request.
type Caller struct {
	AccessKeyID string
	// InstanceID is set for an instance's role credentials; empty for the operator.
	InstanceID string
}

// Operator reports whether the caller signed with the operator's key.
func (c Caller) Operator() bool { return c.InstanceID == "" }

// Keys are the secrets vpcsim authenticates with: the operator's key pair and the key the
// role credentials are derived from.
type Keys struct {
	Operator Credentials
	RoleKey  []byte
}

// FileName is the file in a state directory that keeps the keys (mode 0600).
const FileName = "auth.json"

// operatorPrefix and rolePrefix are EC2's access key ID prefixes for long-term and
// temporary credentials.
const (
	operatorPrefix = "AKIA"
	rolePrefix     = "ASIA"
)

// NewKeys makes fresh keys. A zero operator is generated (AKIA + 16 characters, a 40-character
// secret, as IAM's).
func NewKeys(operator Credentials) (*Keys, error) {
	k := &Keys{Operator: operator, RoleKey: make([]byte, 32)}
	if _, err := rand.Read(k.RoleKey); err != nil {
		return nil, err
	}
	if k.Operator.AccessKeyID == "" {
		var err error
		if k.Operator, err = newOperator(); err != nil {
			return nil, err
		}
	}
	return k, k.check()
}

func newOperator() (Credentials, error) {
	b := make([]byte, 40)
	if _, err := rand.Read(b); err != nil {
		return Credentials{}, err
	}
	id := base32.StdEncoding.EncodeToString(b[:10])[:16]
	return Credentials{AccessKeyID: operatorPrefix + id, SecretAccessKey: base64.StdEncoding.EncodeToString(b[10:])[:40]}, nil
}

func (k *Keys) check() error {
	switch {
	case k.Operator.AccessKeyID == "" || k.Operator.SecretAccessKey == "":
		return errors.New("the operator credential needs both an access key ID and a secret access key")
	case strings.HasPrefix(k.Operator.AccessKeyID, rolePrefix):
		return fmt.Errorf("operator access key ID %q: the prefix %s is kept for role credentials", k.Operator.AccessKeyID, rolePrefix)
	case strings.ContainsAny(k.Operator.AccessKeyID, "/, =\n\t"):
		return fmt.Errorf("operator access key ID %q: only letters and digits are allowed", k.Operator.AccessKeyID)
	case k.Operator.SessionToken != "":
		return errors.New("the operator credential is long-term: it has no session token")
	case len(k.RoleKey) < 16:
		return errors.New("role key shorter than 16 bytes")
	}
	return nil
}

// LoadOrCreate reads the keys kept in dir, or makes and keeps new ones. A non-zero operator
// replaces the kept operator credential (the role key stays, so issued role credentials
// stay valid).
func LoadOrCreate(dir string, operator Credentials) (*Keys, error) {
	path := filepath.Join(dir, FileName)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		var k Keys
		if err := json.Unmarshal(data, &k); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := k.check(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if operator.AccessKeyID == "" || operator == k.Operator {
			return &k, nil
		}
		k.Operator = operator
		if err := k.check(); err != nil {
			return nil, err
		}
		return &k, writeFile(path, &k)
	case errors.Is(err, os.ErrNotExist):
		k, err := NewKeys(operator)
		if err != nil {
			return nil, err
		}
		return k, writeFile(path, k)
	default:
		return nil, err
	}
}

func writeFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(data, '\n'))
}

// WriteFileAtomic writes a secret file (0600) by write-temp, fsync, rename.
func WriteFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// SharedCredentialsFile is the operator credential as an AWS shared credentials file (profile
// "default"), the format AWS_SHARED_CREDENTIALS_FILE names.
func (k *Keys) SharedCredentialsFile() []byte {
	return []byte(fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		k.Operator.AccessKeyID, k.Operator.SecretAccessKey))
}

// rotations is how many times role credentials are reissued within their lifetime, as EC2
// makes new ones well before the old expire.
const rotations = 6

// Role returns the instance's role credentials at now: the same within one rotation window
// (ttl/6), valid for ttl from the window's start.
func (k *Keys) Role(instanceID string, now time.Time, ttl time.Duration) RoleCredentials {
	every := max(ttl/rotations, time.Second)
	start := now.UTC().Truncate(every).Truncate(time.Second)
	exp := start.Add(ttl).Truncate(time.Second)
	if !exp.After(start) {
		exp = start.Add(time.Second)
	}
	payload := instanceID + "|" + strconv.FormatInt(start.Unix(), 10) + "|" + strconv.FormatInt(exp.Unix(), 10)
	token := base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(k.mac("token", payload))
	return RoleCredentials{Credentials: k.roleCreds(payload, token), LastUpdated: start, Expiration: exp}
}

func (k *Keys) roleCreds(payload, token string) Credentials {
	id := base32.StdEncoding.EncodeToString(k.mac("akid", payload))[:16]
	secret := base64.StdEncoding.EncodeToString(k.mac("secret", payload))[:40]
	return Credentials{AccessKeyID: rolePrefix + id, SecretAccessKey: secret, SessionToken: token}
}

func (k *Keys) mac(purpose, payload string) []byte {
	m := hmac.New(sha256.New, k.RoleKey)
	m.Write([]byte(purpose + "\x00" + payload))
	return m.Sum(nil)
}

// errBadToken is what a session token check says of a token it cannot trust.
var errBadToken = errors.New("the security token included in the request is invalid")

// parseToken checks a role session token's MAC and returns the credentials it stands for,
// its instance and its expiry.
func (k *Keys) parseToken(token string) (Credentials, string, time.Time, error) {
	p, m, ok := strings.Cut(token, ".")
	if !ok {
		return Credentials{}, "", time.Time{}, errBadToken
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sum, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil || !hmac.Equal(sum, k.mac("token", string(payload))) {
		return Credentials{}, "", time.Time{}, errBadToken
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 {
		return Credentials{}, "", time.Time{}, errBadToken
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return Credentials{}, "", time.Time{}, errBadToken
	}
	return k.roleCreds(string(payload), token), parts[0], time.Unix(exp, 0).UTC(), nil
}

// WebIdentityPrefix starts the session name of credentials issued by AssumeRoleWithWebIdentity
// (Caller.InstanceID "web-identity/ROLE/SESSION"), so they are told from an instance's.
const WebIdentityPrefix = "web-identity/"

// WebIdentityToken is a token for subject (a service account, as
// "system:serviceaccount:NAMESPACE:NAME") that vpcsim's STS accepts: vpcsim plays the cluster's
// OIDC issuer, as IRSA's is. Three dot-separated base64url parts, as a JWT has: a fixed header,
// the subject, and a MAC over the subject with the role key.
func (k *Keys) WebIdentityToken(subject string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"vpcsim"}`)) + "." +
		enc.EncodeToString([]byte(subject)) + "." + enc.EncodeToString(k.mac("web-identity", subject))
}

// errBadWebIdentityToken is what STS says of a token its issuer did not sign.
var errBadWebIdentityToken = errors.New("the web identity token is not one vpcsim's issuer signed")

// WebIdentitySubject checks a token WebIdentityToken made and returns its subject.
func (k *Keys) WebIdentitySubject(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errBadWebIdentityToken
	}
	subject, err1 := base64.RawURLEncoding.DecodeString(parts[1])
	sum, err2 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || !hmac.Equal(sum, k.mac("web-identity", string(subject))) {
		return "", errBadWebIdentityToken
	}
	return string(subject), nil
}
