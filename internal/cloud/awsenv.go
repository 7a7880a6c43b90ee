package cloud

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// CredentialSource is where the agent's EC2 credentials come from.
type CredentialSource string

// The sources, in the order the agent looks for them: the order of aws-sdk-go-v2's default
// chain (config.LoadDefaultConfig), less the shared files (~/.aws/config, ~/.aws/credentials)
// and what only they configure (named profiles, SSO, sign-in, credential_process, assumed
// roles). A node agent meets these four; the shared files' clients would cost vpcnetd 2 MiB
// of memory (BENCHMARKS.md, "vpcnetd's resident memory").
const (
	// SourceEnvironment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with AWS_SESSION_TOKEN
	// when they are temporary.
	SourceEnvironment CredentialSource = "environment"
	// SourceWebIdentity: IAM roles for service accounts (IRSA). AWS_WEB_IDENTITY_TOKEN_FILE
	// holds the projected service account token, AWS_ROLE_ARN the role, exchanged through STS
	// AssumeRoleWithWebIdentity (AWS_ROLE_SESSION_NAME, else a time stamp, names the session;
	// AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else STS of the region, is where).
	SourceWebIdentity CredentialSource = "web-identity"
	// SourceContainer: the container credentials endpoint, as EKS Pod Identity and ECS set it:
	// AWS_CONTAINER_CREDENTIALS_FULL_URI, or AWS_CONTAINER_CREDENTIALS_RELATIVE_URI below
	// http://169.254.170.2, with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read at every
	// fetch) or AWS_CONTAINER_AUTHORIZATION_TOKEN as the Authorization header.
	SourceContainer CredentialSource = "container"
	// SourceInstanceRole: the instance profile's role credentials from IMDS
	// (iam/security-credentials/ROLE), from the agent's IMDS endpoint.
	SourceInstanceRole CredentialSource = "instance-role"
)

// sharedFileSettings are the environment variables that only the shared files' chain reads.
// The agent refuses to start with one set rather than ignore it and sign as someone else.
var sharedFileSettings = []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"}

// containerHosts are the addresses the container credentials endpoint may have over plain
// http besides loopback: ECS's and EKS Pod Identity's (the SDK's own rule).
var containerHosts = []netip.Addr{
	netip.MustParseAddr("169.254.170.2"),
	netip.MustParseAddr("169.254.170.23"),
	netip.MustParseAddr("fd00:ec2::23"),
}

// credentialChoice is the source the environment selects, with its settings.
type credentialChoice struct {
	Source CredentialSource

	Keys aws.Credentials // SourceEnvironment

	TokenFile, RoleARN, SessionName, STSEndpoint string // SourceWebIdentity

	Endpoint, AuthToken, AuthTokenFile string // SourceContainer
}

// chooseCredentials picks the credential source from the environment (getenv), first match
// wins: environment keys, web identity, container endpoint, instance role. It reads no file
// and makes no call. Errors, one line each, name the variable: a shared-file setting
// (AWS_PROFILE, ...), one key without the other, a token file without a role or the reverse,
// a container URI that is not an absolute http(s) URL or is plain http to a host other than
// loopback or the container-credentials addresses.
func chooseCredentials(getenv func(string) string) (credentialChoice, error) {
	for _, k := range sharedFileSettings {
		if v := getenv(k); v != "" {
			return credentialChoice{}, fmt.Errorf("%s=%q: vpcnetd does not read the AWS shared config and credentials files (profiles, SSO); unset it and give credentials by AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, IRSA, EKS Pod Identity or the instance role", k, v)
		}
	}
	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" {
		id = getenv("AWS_ACCESS_KEY") // the SDK's older spellings
	}
	if secret == "" {
		secret = getenv("AWS_SECRET_KEY")
	}
	switch {
	case id != "" && secret != "":
		return credentialChoice{Source: SourceEnvironment, Keys: aws.Credentials{
			AccessKeyID: id, SecretAccessKey: secret, SessionToken: getenv("AWS_SESSION_TOKEN"), Source: "EnvConfigCredentials"}}, nil
	case id != "":
		return credentialChoice{}, fmt.Errorf("AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY")
	case secret != "":
		return credentialChoice{}, fmt.Errorf("AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID")
	}
	tokenFile, role := getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), getenv("AWS_ROLE_ARN")
	switch {
	case tokenFile != "" && role != "":
		sts := getenv("AWS_ENDPOINT_URL_STS")
		if sts == "" {
			sts = getenv("AWS_ENDPOINT_URL")
		}
		if sts != "" {
			if err := absoluteURL(sts); err != nil {
				return credentialChoice{}, fmt.Errorf("STS endpoint %q: %w", sts, err)
			}
		}
		return credentialChoice{Source: SourceWebIdentity, TokenFile: tokenFile, RoleARN: role,
			SessionName: getenv("AWS_ROLE_SESSION_NAME"), STSEndpoint: sts}, nil
	case tokenFile != "":
		return credentialChoice{}, fmt.Errorf("AWS_WEB_IDENTITY_TOKEN_FILE is set without AWS_ROLE_ARN (IRSA sets both)")
	}
	c := credentialChoice{Source: SourceContainer, AuthToken: getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
		AuthTokenFile: getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")}
	if rel := getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); rel != "" {
		if !strings.HasPrefix(rel, "/") {
			return credentialChoice{}, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=%q: not a path starting with /", rel)
		}
		c.Endpoint = "http://169.254.170.2" + rel
		if err := absoluteURL(c.Endpoint); err != nil {
			return credentialChoice{}, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=%q: %w", rel, err)
		}
		return c, nil
	}
	if full := getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"); full != "" {
		if err := containerURL(full); err != nil {
			return credentialChoice{}, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_FULL_URI=%q: %w", full, err)
		}
		c.Endpoint = full
		return c, nil
	}
	return credentialChoice{Source: SourceInstanceRole}, nil
}

// CheckEnvironment checks the AWS settings of the environment (getenv) the client will read,
// reading AWS_CA_BUNDLE's file but calling nothing, and returns the credential source they
// select. Its errors are New's, one line naming the variable; vpcnetd calls it before it
// touches anything.
func CheckEnvironment(getenv func(string) string) (CredentialSource, error) {
	ch, err := chooseCredentials(getenv)
	if err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	e, err := endpointSettingsFrom(getenv)
	if err != nil {
		return "", err
	}
	if e.CABundle != "" {
		if _, err := caPool(e.CABundle); err != nil {
			return "", err
		}
	}
	return ch.Source, nil
}

// absoluteURL checks that s is an http or https URL with a host.
func absoluteURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("not an http(s) URL with a host")
	}
	return nil
}

// containerURL checks a full container credentials URI: https to any host, http only to
// loopback or the ECS/EKS container-credentials addresses, so the credentials do not cross
// a network in the clear. A host name over http must be localhost (the SDK would resolve
// it; the agent does no DNS at start).
func containerURL(s string) error {
	if err := absoluteURL(s); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	if u.Scheme == "https" {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err == nil && (a.Unmap().IsLoopback() || slices.Contains(containerHosts, a.Unmap())) {
		return nil
	}
	return fmt.Errorf("plain http is allowed only to loopback, 169.254.170.2, 169.254.170.23 or [fd00:ec2::23]; use https")
}

// credentialsProvider builds the provider of the chosen source, cached (the SDK's cache:
// temporary credentials are fetched again shortly before they expire). The instance role
// reads the given IMDS client; the endpoints are reached through httpClient with retryer.
func credentialsProvider(ch credentialChoice, region string, e endpointSettings, md *imds.Client, httpClient aws.HTTPClient, retryer func() aws.Retryer) aws.CredentialsProvider {
	switch ch.Source {
	case SourceEnvironment:
		return credentials.StaticCredentialsProvider{Value: ch.Keys}
	case SourceWebIdentity:
		fips, dual := e.endpointOptions()
		client := sts.New(sts.Options{Region: region, HTTPClient: httpClient, Retryer: retryer(),
			BaseEndpoint:    nonEmpty(ch.STSEndpoint),
			EndpointOptions: sts.EndpointResolverOptions{UseFIPSEndpoint: fips, UseDualStackEndpoint: dual}})
		return aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(client, ch.RoleARN,
			stscreds.IdentityTokenFile(ch.TokenFile), func(o *stscreds.WebIdentityRoleOptions) {
				o.RoleSessionName = ch.SessionName
			}))
	case SourceContainer:
		p := endpointcreds.New(ch.Endpoint, func(o *endpointcreds.Options) {
			o.HTTPClient = httpClient
			o.Retryer = retryer()
			o.AuthorizationToken = ch.AuthToken
			if f := ch.AuthTokenFile; f != "" {
				o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
					b, err := os.ReadFile(f)
					if err != nil {
						return "", fmt.Errorf("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: %w", err)
					}
					return strings.TrimSpace(string(b)), nil
				})
			}
		})
		return aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 5 * time.Minute })
	default:
		return aws.NewCredentialsCache(ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = md }))
	}
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// endpointSettings are the SDK's endpoint and TLS settings the agent honours from the
// environment, as config.LoadDefaultConfig did.
type endpointSettings struct {
	FIPS      bool   // AWS_USE_FIPS_ENDPOINT=true: EC2's and STS's FIPS endpoints
	DualStack bool   // AWS_USE_DUALSTACK_ENDPOINT=true: their IPv4+IPv6 endpoints
	CABundle  string // AWS_CA_BUNDLE: a PEM file whose certificates replace the system roots
}

// endpointSettingsFrom reads endpointSettings; a boolean other than true or false (any case)
// is an error naming the variable.
func endpointSettingsFrom(getenv func(string) string) (endpointSettings, error) {
	var e endpointSettings
	for k, dst := range map[string]*bool{"AWS_USE_FIPS_ENDPOINT": &e.FIPS, "AWS_USE_DUALSTACK_ENDPOINT": &e.DualStack} {
		switch v := getenv(k); strings.ToLower(v) {
		case "", "false":
		case "true":
			*dst = true
		default:
			return endpointSettings{}, fmt.Errorf("%s=%q: want true or false", k, v)
		}
	}
	e.CABundle = getenv("AWS_CA_BUNDLE")
	return e, nil
}

// endpointOptions are e as the SDK's clients take them.
func (e endpointSettings) endpointOptions() (fips aws.FIPSEndpointState, dual aws.DualStackEndpointState) {
	fips, dual = aws.FIPSEndpointStateDisabled, aws.DualStackEndpointStateDisabled
	if e.FIPS {
		fips = aws.FIPSEndpointStateEnabled
	}
	if e.DualStack {
		dual = aws.DualStackEndpointStateEnabled
	}
	return fips, dual
}

// caPool reads the PEM file of AWS_CA_BUNDLE into a pool of its certificates.
func caPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("AWS_CA_BUNDLE=%q: no PEM certificate in it", path)
	}
	return pool, nil
}
