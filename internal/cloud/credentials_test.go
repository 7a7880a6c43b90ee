package cloud_test

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/vpcnet/vpcnet/internal/cloud"
	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// awsVariables are every variable the client's credential and endpoint choice reads; each test
// starts with all of them unset, whatever the machine's environment holds.
var awsVariables = []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN",
	"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT", "AWS_CA_BUNDLE"}

func clearAWS(t *testing.T) {
	for _, k := range awsVariables {
		t.Setenv(k, "")
	}
}

// TestCredentialSources (issue 11 fault 9; issue 16 item 7): each credential source the agent
// keeps signs calls vpcsim accepts (it checks every SigV4 signature against the credentials it
// issued): the instance role's from vpcsim's IMDS with nothing in the environment, keys in the
// environment, a web identity token exchanged at vpcsim's STS (IRSA's settings), and a container
// credentials endpoint (EKS Pod Identity's settings) that is given
// the token file's content as Authorization. EC2 refusing keys is an auth failure that says to
// check the credentials; a container endpoint refusing the token fails the call as unauthorized
// too, not as an unreachable cloud.
func TestCredentialSources(t *testing.T) {
	s, _, md := setupSim(t)
	cfg := cloud.Config{EC2Endpoint: s.Endpoint(), IMDSEndpoint: md, Region: s.Region(), Cluster: "unit", MaxAttempts: 1}
	newClient := func(t *testing.T, want cloud.CredentialSource) *cloud.Client {
		t.Helper()
		c, err := cloud.New(bg, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if c.CredentialSource() != want {
			t.Fatalf("credentials from %s, want %s", c.CredentialSource(), want)
		}
		return c
	}
	clearAWS(t)
	id, err := newClient(t, cloud.SourceInstanceRole).Identity(bg)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("instance role", func(t *testing.T) {
		clearAWS(t)
		if enis, err := newClient(t, cloud.SourceInstanceRole).ENIs(bg, id.InstanceID); err != nil || len(enis) != 1 {
			t.Fatalf("with the instance role's credentials: %v %v", enis, err)
		}
	})

	t.Run("environment", func(t *testing.T) {
		clearAWS(t)
		op := s.OperatorCredentials()
		t.Setenv("AWS_ACCESS_KEY_ID", op.AccessKeyID)
		t.Setenv("AWS_SECRET_ACCESS_KEY", op.SecretAccessKey)
		if enis, err := newClient(t, cloud.SourceEnvironment).ENIs(bg, id.InstanceID); err != nil || len(enis) != 1 {
			t.Fatalf("with the operator's keys: %v %v", enis, err)
		}
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDNOTISSUED")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
		_, err := newClient(t, cloud.SourceEnvironment).ENIs(bg, id.InstanceID)
		if cloud.KindOf(err) != cloud.KindAuthFailure || !strings.Contains(cloud.Explain(err), "credentials") {
			t.Fatalf("with credentials EC2 did not issue: %v (%s)", err, cloud.Explain(err))
		}
	})

	t.Run("container endpoint", func(t *testing.T) {
		clearAWS(t)
		// The endpoint hands out the instance role's credentials, read from vpcsim's IMDS, as
		// the EKS Pod Identity agent hands out a role's.
		role := imds.New(imds.Options{Endpoint: md})
		token := filepath.Join(t.TempDir(), "eks-pod-identity-token")
		if err := os.WriteFile(token, []byte("pod-identity-token-1"), 0o600); err != nil {
			t.Fatal(err)
		}
		var served, refused atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/credentials" || r.Header.Get("Authorization") != "pod-identity-token-1" {
				refused.Add(1)
				http.Error(w, `{"code":"AccessDeniedException","message":"bad token"}`, http.StatusForbidden)
				return
			}
			out, err := role.GetMetadata(r.Context(), &imds.GetMetadataInput{Path: "iam/security-credentials/" + s.InstanceRole()})
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			var c struct{ AccessKeyId, SecretAccessKey, Token, Expiration string }
			if err := json.NewDecoder(out.Content).Decode(&c); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			served.Add(1)
			_ = json.NewEncoder(w).Encode(c)
		}))
		defer srv.Close()
		t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", srv.URL+"/v1/credentials")
		t.Setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token)
		if enis, err := newClient(t, cloud.SourceContainer).ENIs(bg, id.InstanceID); err != nil || len(enis) != 1 {
			t.Fatalf("with the container endpoint's credentials: %v %v", enis, err)
		}
		if served.Load() != 1 || refused.Load() != 0 {
			t.Fatalf("the endpoint served %d and refused %d, want 1 and 0", served.Load(), refused.Load())
		}
		if err := os.WriteFile(token, []byte("some-other-token"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := newClient(t, cloud.SourceContainer).ENIs(bg, id.InstanceID)
		if refused.Load() == 0 || cloud.KindOf(err) != cloud.KindAuthFailure {
			t.Fatalf("with a token the endpoint refuses: %v (kind %v, %d refused)", err, cloud.KindOf(err), refused.Load())
		}
	})

	t.Run("web identity", func(t *testing.T) {
		clearAWS(t)
		// IRSA's settings, with vpcsim as the cluster's OIDC issuer and as STS.
		token := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(token, []byte(s.WebIdentityToken("system:serviceaccount:kube-system:vpcnet")), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token)
		t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::"+model.OwnerID+":role/vpcnet-cni")
		t.Setenv("AWS_ENDPOINT_URL_STS", s.STSEndpoint())
		if enis, err := newClient(t, cloud.SourceWebIdentity).ENIs(bg, id.InstanceID); err != nil || len(enis) != 1 {
			t.Fatalf("with the web identity role's credentials: %v %v", enis, err)
		}
		if err := os.WriteFile(token, []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := newClient(t, cloud.SourceWebIdentity).ENIs(bg, id.InstanceID)
		if cloud.KindOf(err) != cloud.KindAuthFailure || !strings.Contains(err.Error(), "InvalidIdentityToken") {
			t.Fatalf("with a token STS refuses: %v (kind %v)", err, cloud.KindOf(err))
		}
	})

	t.Run("shared files refused", func(t *testing.T) {
		clearAWS(t)
		t.Setenv("AWS_PROFILE", "dev")
		_, err := cloud.New(bg, cfg)
		if err == nil || !strings.Contains(err.Error(), `AWS_PROFILE="dev"`) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("with AWS_PROFILE set: %v", err)
		}
	})
}

// TestCABundle: with AWS_CA_BUNDLE naming a PEM file, EC2 over TLS is trusted through that
// file's certificates; without it the same endpoint's certificate is refused, and a file with
// no certificate is an error before any call.
func TestCABundle(t *testing.T) {
	s, _, md := setupSim(t)
	clearAWS(t)
	op := s.OperatorCredentials()
	t.Setenv("AWS_ACCESS_KEY_ID", op.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", op.SecretAccessKey)
	// TLS in front of vpcsim, as a proxy that re-signs traffic with a private CA would be.
	target, _ := url.Parse(s.Endpoint())
	front := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	defer front.Close()
	cfg := cloud.Config{EC2Endpoint: front.URL, IMDSEndpoint: md, Region: s.Region(), Cluster: "unit", MaxAttempts: 1}
	c, err := cloud.New(bg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ENIs(bg, "i-none"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the bundle: %v, want the certificate refused", err)
	}
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
	if c, err = cloud.New(bg, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ENIs(bg, "i-none"); err != nil {
		t.Fatalf("with the bundle: %v", err)
	}
	if err := os.WriteFile(bundle, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cloud.New(bg, cfg); err == nil || !strings.Contains(err.Error(), "AWS_CA_BUNDLE") {
		t.Fatalf("with a bundle of no certificate: %v", err)
	}
}
