package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const region = "us-east-1"

// signed builds a form POST signed by the SDK's signer with c at t.
func signed(t testing.TB, c Credentials, body string, at time.Time) *http.Request {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:4600/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey,
		SessionToken: c.SessionToken}, r, hex.EncodeToString(sum[:]), Service, region, at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVerify(t *testing.T) {
	k, err := NewKeys(Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	body := "Action=DescribeVpcs&Version=2016-11-15"
	role := k.Role("i-0123456789abcdef0", now, time.Hour)
	other := k.Role("i-0fedcba9876543210", now, time.Hour)
	for _, tc := range []struct {
		name     string
		r        *http.Request
		body     string
		at       time.Time
		code     string
		instance string
	}{
		{"operator", signed(t, k.Operator, body, now), body, now, "", ""},
		{"role", signed(t, role.Credentials, body, now), body, now, "", "i-0123456789abcdef0"},
		{"role just before expiry", signed(t, role.Credentials, body, role.Expiration.Add(-time.Minute)), body, role.Expiration.Add(-time.Minute), "", "i-0123456789abcdef0"},
		{"role expired", signed(t, role.Credentials, body, role.Expiration), body, role.Expiration, "RequestExpired", ""},
		{"stale date", signed(t, k.Operator, body, now.Add(-6*time.Minute)), body, now, "RequestExpired", ""},
		{"wrong region", func() *http.Request {
			r := signed(t, k.Operator, body, now)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/us-east-1/", "/eu-west-1/", 1))
			return r
		}(), body, now, "AuthFailure", ""},
		{"body changed", signed(t, k.Operator, body, now), body + "&DryRun=true", now, "SignatureDoesNotMatch", ""},
		{"wrong secret", signed(t, Credentials{AccessKeyID: k.Operator.AccessKeyID, SecretAccessKey: "x"}, body, now), body, now, "SignatureDoesNotMatch", ""},
		{"another instance's key with this token", signed(t, Credentials{AccessKeyID: other.AccessKeyID, SecretAccessKey: other.SecretAccessKey, SessionToken: role.SessionToken}, body, now), body, now, "AuthFailure", ""},
		{"unsigned", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:4600/", nil)
			return r
		}(), body, now, "MissingParameter", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := k.Verify(tc.r, []byte(tc.body), region, tc.at)
			code := ""
			if err != nil {
				code = err.Code
			}
			if code != tc.code || (err == nil && c.InstanceID != tc.instance) {
				t.Fatalf("Verify: caller %+v, error %v; want code %q instance %q", c, err, tc.code, tc.instance)
			}
		})
	}
}

// FuzzVerify sends arbitrary Authorization headers, tokens and bodies through the check: it
// never panics and accepts nothing but the two genuinely signed seeds.
func FuzzVerify(f *testing.F) {
	k, _ := NewKeys(Credentials{AccessKeyID: "AKIAFUZZ", SecretAccessKey: "secret"})
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	good := signed(f, k.Operator, "Action=X", now)
	role := k.Role("i-1", now, time.Hour)
	goodRole := signed(f, role.Credentials, "a=b", now)
	f.Add(good.Header.Get("Authorization"), good.Header.Get("X-Amz-Date"), "", "Action=X")
	f.Add(goodRole.Header.Get("Authorization"), "20261130T000000Z", role.SessionToken, "a=b")
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAFUZZ/20261130/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00", "20261130T000000Z", "", "")
	f.Add("AWS4-HMAC-SHA256 Credential=ASIA/x/y/z/aws4_request,,,", "", "a.b", "")
	f.Fuzz(func(t *testing.T, authz, date, token, body string) {
		r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:4600/", bytes.NewReader([]byte(body)))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		r.Header.Set("Authorization", authz)
		r.Header.Set("X-Amz-Date", date)
		if token != "" {
			r.Header.Set("X-Amz-Security-Token", token)
		}
		c, err := k.Verify(r, []byte(body), region, now)
		if err == nil && authz != good.Header.Get("Authorization") && authz != goodRole.Header.Get("Authorization") {
			t.Fatalf("accepted %q as %+v", authz, c)
		}
	})
}

// Role credentials are stable within a rotation window and survive a reload of the keys.
func TestRoleCredentialsStable(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreate(dir, Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreate(dir, Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 0, 10, 0, 0, time.UTC)
	a, b := k1.Role("i-1", now, 6*time.Hour), k2.Role("i-1", now.Add(time.Minute), 6*time.Hour)
	if a != b || k1.Operator != k2.Operator {
		t.Fatalf("reloaded keys give other credentials: %+v vs %+v", a, b)
	}
	if c := k1.Role("i-1", now.Add(time.Hour), 6*time.Hour); c.AccessKeyID == a.AccessKeyID || !c.Expiration.After(a.Expiration) {
		t.Fatalf("credentials not rotated after a window: %+v", c)
	}
	if _, err := LoadOrCreate(dir, Credentials{AccessKeyID: "ASIAX", SecretAccessKey: "y"}); err == nil {
		t.Fatal("an operator key with the role prefix was accepted")
	}
}
