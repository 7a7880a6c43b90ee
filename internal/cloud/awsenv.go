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

// The environment variables chooseCredentials and endpointSettingsFrom read. The code reads
// them by these names only, and Environment documents them by the same names, so vpcnetd's
// --help cannot drift from what is read.
const (
	envAccessKeyID       = "AWS_ACCESS_KEY_ID"
	envAccessKeyOld      = "AWS_ACCESS_KEY" // the SDK's older spelling
	envSecretAccessKey   = "AWS_SECRET_ACCESS_KEY"
	envSecretKeyOld      = "AWS_SECRET_KEY" // the SDK's older spelling
	envSessionToken      = "AWS_SESSION_TOKEN"
	envWebIdentityToken  = "AWS_WEB_IDENTITY_TOKEN_FILE"
	envRoleARN           = "AWS_ROLE_ARN"
	envRoleSessionName   = "AWS_ROLE_SESSION_NAME"
	envEndpointSTS       = "AWS_ENDPOINT_URL_STS"
	envEndpointAll       = "AWS_ENDPOINT_URL"
	envContainerRelative = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
	envContainerFull     = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
	envContainerToken    = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
	envContainerTokenF   = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
	envFIPS              = "AWS_USE_FIPS_ENDPOINT"
	envDualStack         = "AWS_USE_DUALSTACK_ENDPOINT"
	envCABundle          = "AWS_CA_BUNDLE"
)

// sharedFileSettings are the environment variables that only the shared files' chain reads.
// The agent refuses to start with one set rather than ignore it and sign as someone else.
var sharedFileSettings = []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"}

// EnvVar documents one environment variable this package reads (vpcnetd's --help prints them).
type EnvVar struct {
	Name string
	// Source is the credential source the variable selects or configures; "" when it
	// applies to every source (endpoints, TLS, proxy) or is refused.
	Source CredentialSource
	Help   string
}

// Environment lists every environment variable the credential chain and the endpoint settings
// read (the EC2 and IMDS endpoint and region variables, which vpcnetd checks in its own
// settings table, excepted), credential variables grouped by source in the order the sources
// are tried (chooseCredentials); then the settings of every source; then Refused.
var Environment = []EnvVar{
	{envAccessKeyID, SourceEnvironment, "access key ID (" + envAccessKeyOld + ", the SDK's older name, when unset); with " + envSecretAccessKey + " it selects these static keys, one without the other is refused"},
	{envSecretAccessKey, SourceEnvironment, "secret access key (" + envSecretKeyOld + " when unset)"},
	{envSessionToken, SourceEnvironment, "session token of temporary keys"},
	{envWebIdentityToken, SourceWebIdentity, "IRSA: file of the projected service account token, read at each refresh and exchanged through STS AssumeRoleWithWebIdentity; needs " + envRoleARN},
	{envRoleARN, SourceWebIdentity, "IRSA: the role to assume"},
	{envRoleSessionName, SourceWebIdentity, "IRSA: the session name (default: a time stamp)"},
	{envEndpointSTS, SourceWebIdentity, "IRSA: STS endpoint URL (default: " + envEndpointAll + ", else STS of the region)"},
	{envContainerRelative, SourceContainer, "EKS Pod Identity / ECS: credentials path below http://169.254.170.2"},
	{envContainerFull, SourceContainer, "EKS Pod Identity / ECS: credentials URL (when the relative URI is unset); plain http only to loopback, 169.254.170.2, 169.254.170.23 or [fd00:ec2::23]"},
	{envContainerTokenF, SourceContainer, "file holding the Authorization header for the container endpoint, read at each fetch"},
	{envContainerToken, SourceContainer, "the Authorization header itself (when the file is unset)"},
	{envFIPS, "", "true: EC2's and STS's FIPS endpoints, when no endpoint URL is set (true or false)"},
	{envDualStack, "", "true: their dual-stack endpoints, when no endpoint URL is set (true or false)"},
	{envCABundle, "", "PEM file whose certificates replace the system roots for EC2, STS and the credential endpoints; read at start"},
	{"HTTPS_PROXY", "", "proxy for https requests (also HTTP_PROXY, NO_PROXY, in any case; read by Go's net/http)"},
}

// CredentialSources are the sources in the order chooseCredentials tries them.
var CredentialSources = []CredentialSource{SourceEnvironment, SourceWebIdentity, SourceContainer, SourceInstanceRole}

// Refused are the AWS SDK's variables for the shared config and credentials files: vpcnetd
// does not read those files and stops at start (exit 2) when one of these is set.
func Refused() []string { return slices.Clone(sharedFileSettings) }

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
	id, secret := getenv(envAccessKeyID), getenv(envSecretAccessKey)
	if id == "" {
		id = getenv(envAccessKeyOld) // the SDK's older spellings
	}
	if secret == "" {
		secret = getenv(envSecretKeyOld)
	}
	switch {
	case id != "" && secret != "":
		return credentialChoice{Source: SourceEnvironment, Keys: aws.Credentials{
			AccessKeyID: id, SecretAccessKey: secret, SessionToken: getenv(envSessionToken), Source: "EnvConfigCredentials"}}, nil
	case id != "":
		return credentialChoice{}, fmt.Errorf("AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY")
	case secret != "":
		return credentialChoice{}, fmt.Errorf("AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID")
	}
	tokenFile, role := getenv(envWebIdentityToken), getenv(envRoleARN)
	switch {
	case tokenFile != "" && role != "":
		sts := getenv(envEndpointSTS)
		if sts == "" {
			sts = getenv(envEndpointAll)
		}
		if sts != "" {
			if err := absoluteURL(sts); err != nil {
				return credentialChoice{}, fmt.Errorf("STS endpoint %q: %w", sts, err)
			}
		}
		return credentialChoice{Source: SourceWebIdentity, TokenFile: tokenFile, RoleARN: role,
			SessionName: getenv(envRoleSessionName), STSEndpoint: sts}, nil
	case tokenFile != "":
		return credentialChoice{}, fmt.Errorf("AWS_WEB_IDENTITY_TOKEN_FILE is set without AWS_ROLE_ARN (IRSA sets both)")
	}
	c := credentialChoice{Source: SourceContainer, AuthToken: getenv(envContainerToken),
		AuthTokenFile: getenv(envContainerTokenF)}
	if rel := getenv(envContainerRelative); rel != "" {
		if !strings.HasPrefix(rel, "/") {
			return credentialChoice{}, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=%q: not a path starting with /", rel)
		}
		c.Endpoint = "http://169.254.170.2" + rel
		if err := absoluteURL(c.Endpoint); err != nil {
			return credentialChoice{}, fmt.Errorf("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=%q: %w", rel, err)
		}
		return c, nil
	}
	if full := getenv(envContainerFull); full != "" {
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
	ch, _, _, err := readEnvironment(getenv)
	if err != nil {
		return "", err
	}
	return ch.Source, nil
}

// readEnvironment reads and checks the AWS settings of getenv, for New and CheckEnvironment
// alike: the credential source, the endpoint settings and AWS_CA_BUNDLE's certificates (nil
// when it is unset). It reads that file and calls nothing.
func readEnvironment(getenv func(string) string) (credentialChoice, endpointSettings, *x509.CertPool, error) {
	ch, err := chooseCredentials(getenv)
	if err != nil {
		return credentialChoice{}, endpointSettings{}, nil, fmt.Errorf("credentials: %w", err)
	}
	e, err := endpointSettingsFrom(getenv)
	if err != nil {
		return credentialChoice{}, endpointSettings{}, nil, err
	}
	var roots *x509.CertPool
	if e.CABundle != "" {
		if roots, err = caPool(e.CABundle); err != nil {
			return credentialChoice{}, endpointSettings{}, nil, err
		}
	}
	return ch, e, roots, nil
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
	for k, dst := range map[string]*bool{envFIPS: &e.FIPS, envDualStack: &e.DualStack} {
		switch v := getenv(k); strings.ToLower(v) {
		case "", "false":
		case "true":
			*dst = true
		default:
			return endpointSettings{}, fmt.Errorf("%s=%q: want true or false", k, v)
		}
	}
	e.CABundle = getenv(envCABundle)
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
