package cloud

import (
	"slices"
	"strings"
	"testing"
)

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// TestChooseCredentials: the source the environment selects, in the SDK default chain's order
// (keys, web identity, container endpoint, instance role), and a one-line error naming the
// variable for every setting the agent does not honour or cannot use.
func TestChooseCredentials(t *testing.T) {
	for _, tc := range []struct {
		env   []string
		want  CredentialSource
		err   string // a substring of the error; "" for none
		check func(credentialChoice) bool
	}{
		{want: SourceInstanceRole},
		{env: []string{"AWS_ACCESS_KEY_ID", "AKIA1", "AWS_SECRET_ACCESS_KEY", "s", "AWS_SESSION_TOKEN", "t"}, want: SourceEnvironment,
			check: func(c credentialChoice) bool {
				return c.Keys.AccessKeyID == "AKIA1" && c.Keys.SecretAccessKey == "s" && c.Keys.SessionToken == "t"
			}},
		{env: []string{"AWS_ACCESS_KEY", "AKIA2", "AWS_SECRET_KEY", "s"}, want: SourceEnvironment,
			check: func(c credentialChoice) bool { return c.Keys.AccessKeyID == "AKIA2" }},
		// keys win over everything after them, as in the SDK's chain
		{env: []string{"AWS_ACCESS_KEY_ID", "AKIA1", "AWS_SECRET_ACCESS_KEY", "s", "AWS_WEB_IDENTITY_TOKEN_FILE", "/t", "AWS_ROLE_ARN", "arn:aws:iam::1:role/r",
			"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials"}, want: SourceEnvironment},
		{env: []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "/t", "AWS_ROLE_ARN", "arn:aws:iam::1:role/r", "AWS_ROLE_SESSION_NAME", "n",
			"AWS_ENDPOINT_URL_STS", "https://sts.example", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials"}, want: SourceWebIdentity,
			check: func(c credentialChoice) bool {
				return c.TokenFile == "/t" && c.RoleARN == "arn:aws:iam::1:role/r" && c.SessionName == "n" && c.STSEndpoint == "https://sts.example"
			}},
		{env: []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "/t", "AWS_ROLE_ARN", "r", "AWS_ENDPOINT_URL", "http://127.0.0.1:9"}, want: SourceWebIdentity,
			check: func(c credentialChoice) bool { return c.STSEndpoint == "http://127.0.0.1:9" }},
		// EKS Pod Identity's settings
		{env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"},
			want: SourceContainer, check: func(c credentialChoice) bool {
				return c.Endpoint == "http://169.254.170.23/v1/credentials" && strings.HasSuffix(c.AuthTokenFile, "eks-pod-identity-token")
			}},
		{env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://[fd00:ec2::23]/v1/credentials"}, want: SourceContainer},
		{env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/c"}, want: SourceContainer},
		{env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://localhost/c"}, want: SourceContainer},
		{env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://creds.example/c", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok"}, want: SourceContainer,
			check: func(c credentialChoice) bool { return c.AuthToken == "tok" }},
		// ECS's relative URI wins over the full one, as in the SDK
		{env: []string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/c"}, want: SourceContainer,
			check: func(c credentialChoice) bool { return c.Endpoint == "http://169.254.170.2/v2/credentials/x" }},

		{env: []string{"AWS_PROFILE", "dev"}, err: `AWS_PROFILE="dev": vpcnetd does not read the AWS shared config`},
		{env: []string{"AWS_DEFAULT_PROFILE", "dev", "AWS_ACCESS_KEY_ID", "A", "AWS_SECRET_ACCESS_KEY", "s"}, err: `AWS_DEFAULT_PROFILE="dev"`},
		{env: []string{"AWS_SHARED_CREDENTIALS_FILE", "/root/.aws/credentials"}, err: "AWS_SHARED_CREDENTIALS_FILE="},
		{env: []string{"AWS_CONFIG_FILE", "/c"}, err: "AWS_CONFIG_FILE="},
		{env: []string{"AWS_ACCESS_KEY_ID", "A"}, err: "AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY"},
		{env: []string{"AWS_SECRET_ACCESS_KEY", "s"}, err: "AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID"},
		{env: []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"}, err: "without AWS_ROLE_ARN"},
		{env: []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "/t", "AWS_ROLE_ARN", "r", "AWS_ENDPOINT_URL_STS", "sts.example"}, err: "STS endpoint"},
		{env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.5/c"}, err: "plain http is allowed only to loopback"},
		{env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://creds.example/c"}, err: "plain http"},
		{env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "ftp://127.0.0.1/c"}, err: "not an http(s) URL"},
		{env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "/c"}, err: "not an http(s) URL"},
		{env: []string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/x"}, err: "not a path starting with /"},
	} {
		got, err := chooseCredentials(envOf(tc.env...))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%v: error %v, want one line with %q", tc.env, err, tc.err)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case got.Source != tc.want || tc.check != nil && !tc.check(got):
			t.Errorf("%v: %+v, want source %s", tc.env, got, tc.want)
		}
	}
}

// TestEndpointSettings: AWS_USE_FIPS_ENDPOINT and AWS_USE_DUALSTACK_ENDPOINT take true or false
// in any case, anything else is an error naming the variable.
func TestEndpointSettings(t *testing.T) {
	e, err := endpointSettingsFrom(envOf("AWS_USE_FIPS_ENDPOINT", "TRUE", "AWS_USE_DUALSTACK_ENDPOINT", "false", "AWS_CA_BUNDLE", "/b.pem"))
	if err != nil || !e.FIPS || e.DualStack || e.CABundle != "/b.pem" {
		t.Fatalf("%+v %v", e, err)
	}
	if _, err := endpointSettingsFrom(envOf("AWS_USE_DUALSTACK_ENDPOINT", "yes")); err == nil || !strings.HasPrefix(err.Error(), `AWS_USE_DUALSTACK_ENDPOINT="yes"`) {
		t.Fatalf("dual-stack yes: %v", err)
	}
}

// FuzzChooseCredentials: any environment gives a source or a one-line error, never a panic;
// a container endpoint chosen is one the rule allows.
func FuzzChooseCredentials(f *testing.F) {
	f.Add("AKIA1", "s", "", "", "", "")
	f.Add("", "", "/t", "arn:aws:iam::1:role/r", "", "")
	f.Add("", "", "", "", "/v2/x", "")
	f.Add("", "", "", "", "", "http://169.254.170.23/v1/credentials")
	f.Add("", "", "", "", "", "http://[::1]:80/c")
	f.Fuzz(func(t *testing.T, id, secret, tokenFile, role, rel, full string) {
		c, err := chooseCredentials(envOf("AWS_ACCESS_KEY_ID", id, "AWS_SECRET_ACCESS_KEY", secret, "AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile,
			"AWS_ROLE_ARN", role, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", rel, "AWS_CONTAINER_CREDENTIALS_FULL_URI", full))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of more than one line: %q", err)
			}
			return
		}
		if c.Source == SourceContainer && c.Endpoint != full {
			if err := absoluteURL(c.Endpoint); err != nil {
				t.Fatalf("relative URI %q gave endpoint %q: %v", rel, c.Endpoint, err)
			}
		}
		if c.Source == SourceContainer && c.Endpoint == full && rel == "" {
			if err := containerURL(full); err != nil {
				t.Fatalf("full URI %q accepted: %v", full, err)
			}
		}
	})
}

// TestEnvironmentDocumentsTheChain: Environment, which vpcnetd's --help prints, says what the
// code does: each source's variables, set alone, select that source; the sources come in the
// order chooseCredentials tries them; with all of them set the first wins; every refused
// variable is refused.
func TestEnvironmentDocumentsTheChain(t *testing.T) {
	value := func(name string) string {
		switch {
		case strings.HasSuffix(name, "_RELATIVE_URI"):
			return "/v2/credentials/x"
		case strings.HasSuffix(name, "_URI"), strings.HasPrefix(name, "AWS_ENDPOINT_URL"):
			return "https://example.invalid/"
		}
		return "x"
	}
	all := map[string]string{}
	last := -1
	for _, v := range Environment {
		if v.Source == "" {
			continue
		}
		i := slices.Index(CredentialSources, v.Source)
		if i < last || i < 0 {
			t.Errorf("%s (%s) is listed out of the chain's order %v", v.Name, v.Source, CredentialSources)
		}
		last = i
		all[v.Name] = value(v.Name)
	}
	for _, src := range CredentialSources {
		env := map[string]string{}
		for _, v := range Environment {
			if v.Source == src {
				env[v.Name] = value(v.Name)
			}
		}
		got, err := chooseCredentials(func(k string) string { return env[k] })
		if err != nil || got.Source != src {
			t.Errorf("the variables Environment lists for %s (%v) select %q, %v", src, env, got.Source, err)
		}
	}
	if got, err := chooseCredentials(func(k string) string { return all[k] }); err != nil || got.Source != CredentialSources[0] {
		t.Errorf("every source's variables set: %q, %v; want %s", got.Source, err, CredentialSources[0])
	}
	for _, name := range Refused() {
		if _, err := chooseCredentials(envOf(name, "x")); err == nil || !strings.HasPrefix(err.Error(), name+"=") {
			t.Errorf("%s=x: %v, want refused", name, err)
		}
	}
}
