package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestHelpDocumentsEveryVariable(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, nil, &out, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "unset"
		}
		if !strings.Contains(out.String(), s.name+" (default "+def+")") {
			t.Errorf("--help does not document %s with its default", s.name)
		}
	}
	for _, want := range []string{"WARM_ENI_TARGET", "WARM_IP_TARGET", "MINIMUM_IP_TARGET", "ENABLE_PREFIX_DELEGATION", "WARM_PREFIX_TARGET",
		"MAX_ENI", "IP_COOLDOWN_PERIOD", "VPCNET_POOL_RELEASE_DELAY", "VPCNET_ADD_WAIT", "VPCNET_WARM_POOL", "MAX_PODS", "AWS_VPC_K8S_CNI_EXTERNALSNAT", "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "AWS_VPC_ENI_MTU",
		"AWS_VPC_K8S_CNI_VETHPREFIX", "VPCNET_SOCKET", "VPCNET_STATE_DIR", "VPCNET_CNI_CONF_DIR", "VPCNET_CNI_CONF_NAME", "VPCNET_METRICS_ADDR",
		"VPCNET_CLUSTER_NAME", "VPCNET_HOST_NETWORKING", "VPCNET_INSTANCE_TYPES", "AWS_EC2_ENDPOINT", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_REGION"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %s", want)
		}
	}
	// Every variable vpcnetd's own code reads by name (here and in the module's packages it
	// links: internal/cloud's credential chain, the Kubernetes side, the Go runtime's defaults),
	// found in the source, is in the help as a whole word.
	help := out.String()
	inHelp := func(name string) bool {
		return regexp.MustCompile(`(^|[^A-Z0-9_])` + regexp.QuoteMeta(name) + `($|[^A-Z0-9_])`).MatchString(help)
	}
	reads := envReads(t)
	for _, sure := range []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_USE_FIPS_ENDPOINT", "NODE_NAME", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "VPCNET_INSTANCE_TYPES"} {
		if reads[sure] == nil {
			t.Errorf("the source scan did not find the read of %s", sure)
		}
	}
	for name, where := range reads {
		if !inHelp(name) {
			t.Errorf("--help does not document %s, read at %v", name, where)
		}
	}
	// and what vpcnetd's libraries and the Go runtime read on its behalf
	for _, name := range []string{"KUBERNETES_SERVICE_PORT", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"} {
		if !inHelp(name) {
			t.Errorf("--help does not document %s", name)
		}
	}
	// Grouped: the credential sources in the order they are tried, the refused ones after them,
	// then Kubernetes, then the Go runtime with vpcnetd's defaults.
	order := []string{"1. environment", "AWS_ACCESS_KEY_ID", "2. web-identity", "AWS_WEB_IDENTITY_TOKEN_FILE", "3. container",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "4. instance-role", "refused", "AWS_PROFILE, AWS_DEFAULT_PROFILE, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE",
		"\nKubernetes", "NODE_NAME (default unset)", "\nGo runtime", "GOMAXPROCS (default the CPUs, at most 2)", "GOGC (default 50)", "GOMEMLIMIT (default 16MiB)"}
	at := 0
	for _, s := range order {
		i := strings.Index(help[at:], s)
		if i < 0 {
			t.Errorf("--help lacks %q after offset %d", s, at)
			continue
		}
		at += i + len(s)
	}
}

func TestInvalidValueStopsWithOneLine(t *testing.T) {
	for _, tc := range []struct {
		args, env []string
		names     string
		says      string // and the line says this, if set
	}{
		{env: []string{"WARM_IP_TARGET=lots"}, names: "WARM_IP_TARGET"},
		{env: []string{"WARM_ENI_TARGET=-1"}, names: "WARM_ENI_TARGET"},
		{env: []string{"ENABLE_PREFIX_DELEGATION=maybe"}, names: "ENABLE_PREFIX_DELEGATION"},
		{env: []string{"IP_COOLDOWN_PERIOD=soon"}, names: "IP_COOLDOWN_PERIOD"},
		{env: []string{"VPCNET_POOL_RELEASE_DELAY=-5s"}, names: "VPCNET_POOL_RELEASE_DELAY", says: "must not be negative"},
		{env: []string{"IP_COOLDOWN_PERIOD=-5"}, names: "IP_COOLDOWN_PERIOD", says: "must not be negative"},
		// issue 16 item 4: the ADD wait is bounded below the plugin's 20 s deadline
		{env: []string{"VPCNET_ADD_WAIT=16s"}, names: "VPCNET_ADD_WAIT", says: "longer than 15s"},
		{env: []string{"VPCNET_ADD_WAIT=-1s"}, names: "VPCNET_ADD_WAIT", says: "must not be negative"},
		{env: []string{"VPCNET_ADD_WAIT=soon"}, names: "VPCNET_ADD_WAIT"},
		{env: []string{"VPCNET_WARM_POOL=auto"}, names: "VPCNET_WARM_POOL", says: "aws or adaptive"},
		{env: []string{"VPCNET_WARM_POOL=adaptive", "WARM_IP_TARGET=3"}, names: "VPCNET_WARM_POOL", says: "unset WARM_IP_TARGET"},
		{env: []string{"IP_COOLDOWN_PERIOD=99999999999"}, names: "IP_COOLDOWN_PERIOD", says: "too long"},
		{args: []string{"--vpcnet-pool-release-delay=later"}, names: "VPCNET_POOL_RELEASE_DELAY"},
		{env: []string{"AWS_VPC_ENI_MTU=100000"}, names: "AWS_VPC_ENI_MTU"},
		{env: []string{"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=10.0.0.0/8,bad"}, names: "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"},
		{env: []string{"AWS_EC2_ENDPOINT=localhost:1"}, names: "AWS_EC2_ENDPOINT"},
		{env: []string{"VPCNET_LOG_LEVEL=loud"}, names: "VPCNET_LOG_LEVEL"},
		{args: []string{"--max-eni=0"}, names: "MAX_ENI"},
		{args: []string{"--MAX_PODS=x"}, env: []string{"MAX_PODS=10"}, names: "MAX_PODS"},
		// issue 12 item 7: settings that used to be accepted and broke the node
		{env: []string{"VPCNET_RESYNC_PERIOD=0"}, names: "VPCNET_RESYNC_PERIOD", says: "shorter than 1s"},
		{env: []string{"VPCNET_RESYNC_PERIOD=10ms"}, names: "VPCNET_RESYNC_PERIOD", says: "shorter than 1s"},
		{env: []string{"VPCNET_DETACHED_ENI_GRACE=0"}, names: "VPCNET_DETACHED_ENI_GRACE"},
		{env: []string{"VPCNET_SUBNET_BACKOFF=0"}, names: "VPCNET_SUBNET_BACKOFF"},
		{env: []string{"VPCNET_SOCKET=run/x.sock"}, names: "VPCNET_SOCKET", says: "absolute"},
		{env: []string{"VPCNET_SOCKET="}, names: "VPCNET_SOCKET"},
		{env: []string{"VPCNET_SOCKET=/" + strings.Repeat("s", 120)}, names: "VPCNET_SOCKET", says: "at most 107"},
		{env: []string{"VPCNET_STATE_DIR=var/lib/vpcnet"}, names: "VPCNET_STATE_DIR", says: "absolute"},
		{args: []string{"--vpcnet-cni-conf-dir=net.d"}, names: "VPCNET_CNI_CONF_DIR", says: "absolute"},
		{env: []string{"VPCNET_CNI_CONF_NAME=../../x.conflist"}, names: "VPCNET_CNI_CONF_NAME", says: "path separator"},
		{env: []string{"VPCNET_CNI_CONF_NAME=.."}, names: "VPCNET_CNI_CONF_NAME"},
		{env: []string{"VPCNET_CNI_CONF_NAME=10-vpcnet.conf"}, names: "VPCNET_CNI_CONF_NAME", says: ".conflist"},
		{env: []string{"VPCNET_EC2_QPS=NaN"}, names: "VPCNET_EC2_QPS"},
		{env: []string{"VPCNET_EC2_QPS=+Inf"}, names: "VPCNET_EC2_QPS"},
		{env: []string{"VPCNET_EC2_QPS=-3"}, names: "VPCNET_EC2_QPS"},
		{env: []string{"VPCNET_METRICS_ADDR=0.0.0.0:61678"}, names: "VPCNET_METRICS_ADDR", says: "loopback"},
		{env: []string{"VPCNET_METRICS_ADDR=127.0.0.1"}, names: "VPCNET_METRICS_ADDR", says: "host:port"},
		{env: []string{"VPCNET_METRICS_ADDR=127.0.0.1:99999"}, names: "VPCNET_METRICS_ADDR", says: "port"},
		{env: []string{"VPCNET_CLUSTER_NAME=a\tb"}, names: "VPCNET_CLUSTER_NAME"},
		{env: []string{"VPCNET_CLUSTER_NAME="}, names: "VPCNET_CLUSTER_NAME"},
		{env: []string{"AWS_REGION=us east"}, names: "AWS_REGION"},
		{env: []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://"}, names: "AWS_EC2_METADATA_SERVICE_ENDPOINT"},
		{env: []string{"VPCNET_INSTANCE_TYPES=types.csv"}, names: "VPCNET_INSTANCE_TYPES", says: "absolute"},
		{env: []string{"VPCNET_INSTANCE_TYPES=/nonexistent/types.csv"}, names: "VPCNET_INSTANCE_TYPES", says: "does not load"},
		{env: []string{"VPCNET_INSTANCE_TYPES=/dev/zero"}, names: "VPCNET_INSTANCE_TYPES", says: "regular file"},
		{env: []string{"WARM_IP_TARGET=99999999999999"}, names: "WARM_IP_TARGET"},
		{env: []string{"VPCNET_EC2_MAX_ATTEMPTS=0"}, names: "VPCNET_EC2_MAX_ATTEMPTS"},
	} {
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		code := run(ctx, tc.args, append(safeEnv(t), tc.env...), &out, &errb)
		cancel()
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], tc.names) || !strings.Contains(lines[0], tc.says) {
			t.Errorf("%v %v: exit %d, stderr %q", tc.args, tc.env, code, errb.String())
		}
	}
}

// safeEnv keeps a vpcnetd that a test starts by mistake (on code that accepts a bad setting)
// inside the test's directory and on loopback: state, socket and CNI config in a temporary
// directory, IMDS and EC2 on a closed loopback port.
func safeEnv(t *testing.T) []string {
	dir := t.TempDir()
	return []string{"VPCNET_STATE_DIR=" + dir + "/state", "VPCNET_SOCKET=" + dir + "/run/x.sock", "VPCNET_CNI_CONF_DIR=" + dir + "/net.d",
		"VPCNET_METRICS_ADDR=", "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1", "AWS_EC2_ENDPOINT=http://127.0.0.1:1", "AWS_REGION=us-east-1",
		"VPCNET_HOST_NETWORKING=false"}
}

// TestBadSettingTouchesNothing: a bad setting (here the metrics address, which used to fail
// only after the store was opened) stops vpcnetd before it creates its state directory, socket
// directory or CNI config directory. Fails at 1ca4798 (exit 1, state directory created).
func TestBadSettingTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	env := []string{"VPCNET_STATE_DIR=" + dir + "/state", "VPCNET_SOCKET=" + dir + "/run/x.sock", "VPCNET_CNI_CONF_DIR=" + dir + "/net.d",
		"VPCNET_METRICS_ADDR=10.1.2.3:61678", "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1", "AWS_EC2_ENDPOINT=http://127.0.0.1:1", "AWS_REGION=us-east-1",
		"VPCNET_HOST_NETWORKING=false"}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, nil, env, &out, &errb)
	if code != 2 || !strings.HasPrefix(errb.String(), "vpcnetd: VPCNET_METRICS_ADDR: ") || strings.Count(errb.String(), "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("a refused start created %v", left)
	}
}

// TestSocketPathNamingAFileRefused (issue 11 fault 10): VPCNET_SOCKET naming an existing file
// that is not a socket is refused with exit 2 and one line; the file is left as it was.
func TestSocketPathNamingAFileRefused(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "precious")
	if err := os.WriteFile(victim, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{nil, {"--check-settings"}} {
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		code := run(ctx, args, append(safeEnv(t), "VPCNET_SOCKET="+victim, "VPCNET_STATE_DIR="+dir+"/state"), &out, &errb)
		cancel()
		if code != 2 || !strings.HasPrefix(errb.String(), "vpcnetd: VPCNET_SOCKET: ") || !strings.Contains(errb.String(), "not a socket") || strings.Count(errb.String(), "\n") != 1 {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errb.String())
		}
		if b, err := os.ReadFile(victim); err != nil || string(b) != "keep me\n" {
			t.Fatalf("the file the socket path named was changed: %q %v", b, err)
		}
	}
	// A directory named where a directory is needed is refused the same way.
	var errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if code := run(ctx, nil, append(safeEnv(t), "VPCNET_STATE_DIR="+victim), &errb, &errb); code != 2 || !strings.Contains(errb.String(), "VPCNET_STATE_DIR") {
		t.Fatalf("state dir naming a file: exit %d, %q", code, errb.String())
	}
}

// TestCheckSettings runs the real binary: --check-settings prints nothing and exits 0 for good
// settings, prints the one-line error and exits 2 for a bad one, and creates nothing either way.
func TestCheckSettings(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "vpcnetd")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	base := []string{"VPCNET_STATE_DIR=" + work + "/state", "VPCNET_SOCKET=" + work + "/run/vpcnetd.sock", "VPCNET_CNI_CONF_DIR=" + work + "/net.d",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1", "AWS_EC2_ENDPOINT=http://127.0.0.1:1", "AWS_REGION=us-east-1", "VPCNET_HOST_NETWORKING=false",
		"VPCNET_METRICS_ADDR=127.0.0.1:0"}
	for _, tc := range []struct {
		args, env []string
		code      int
		says      string
	}{
		{args: []string{"--check-settings"}, code: 0},
		{args: []string{"--check-settings", "--warm-ip-target=3"}, env: []string{"VPCNET_RESYNC_PERIOD=5s"}, code: 0},
		{args: []string{"--check-settings"}, env: []string{"VPCNET_RESYNC_PERIOD=0"}, code: 2, says: "vpcnetd: VPCNET_RESYNC_PERIOD: "},
		{args: []string{"--check-settings", "--vpcnet-ec2-qps=NaN"}, code: 2, says: "vpcnetd: VPCNET_EC2_QPS: "},
		{args: []string{"--check-settings", "--bogus"}, code: 2, says: "vpcnetd: unknown flag"},
		// the AWS SDK's variables the agent does not honour, or cannot use, stop it the same way
		{args: []string{"--check-settings"}, env: []string{"AWS_PROFILE=dev"}, code: 2, says: `vpcnetd: credentials: AWS_PROFILE="dev": vpcnetd does not read the AWS shared config`},
		{args: []string{"--check-settings"}, env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://10.0.0.5/v1/credentials"}, code: 2, says: "vpcnetd: credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI="},
		{args: []string{"--check-settings"}, env: []string{"AWS_USE_FIPS_ENDPOINT=yes"}, code: 2, says: `vpcnetd: AWS_USE_FIPS_ENDPOINT="yes"`},
		{args: []string{"--check-settings"}, env: []string{"AWS_CA_BUNDLE=" + filepath.Join(dir, "missing.pem")}, code: 2, says: "vpcnetd: AWS_CA_BUNDLE: "},
		{args: []string{"--check-settings"}, env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials", "AWS_USE_FIPS_ENDPOINT=true"}, code: 0},
		// The Go runtime's variables, checked as the runtime reads them: a value it would ignore
		// (running one P per CPU, or GOGC 100) stops vpcnetd, with --check-settings and at start.
		{args: []string{"--check-settings"}, env: []string{"GOMAXPROCS=abc"}, code: 2, says: `vpcnetd: GOMAXPROCS: "abc" is not a whole number above 0`},
		{args: []string{"--check-settings"}, env: []string{"GOMAXPROCS=0"}, code: 2, says: `vpcnetd: GOMAXPROCS: "0" `},
		{args: []string{"--check-settings"}, env: []string{"GOMAXPROCS=-3"}, code: 2, says: `vpcnetd: GOMAXPROCS: "-3" `},
		{args: []string{"--check-settings"}, env: []string{"GOMAXPROCS=99999999999"}, code: 2, says: `vpcnetd: GOMAXPROCS: `},
		{args: []string{"--check-settings"}, env: []string{"GOGC=x"}, code: 2, says: `vpcnetd: GOGC: "x" is not a whole number or off`},
		{args: []string{"--check-settings"}, env: []string{"GOGC=50%"}, code: 2, says: `vpcnetd: GOGC: `},
		{env: []string{"GOMAXPROCS=abc"}, code: 2, says: `vpcnetd: GOMAXPROCS: "abc" `},
		{env: []string{"GOGC=x"}, code: 2, says: `vpcnetd: GOGC: "x" `},
		{args: []string{"--check-settings"}, env: []string{"GOMAXPROCS=3", "GOGC=off", "GOMEMLIMIT=64MiB"}, code: 0},
		{args: []string{"--check-settings"}, env: []string{"GOMAXPROCS=+1", "GOGC=-1", "GOMEMLIMIT=off"}, code: 0},
		{args: []string{"--check-settings"}, env: []string{"GOGC=200", "GOMEMLIMIT=16777216"}, code: 0},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH")}, base...), tc.env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := cmd.ProcessState.ExitCode()
		if code != tc.code || out.Len() != 0 {
			t.Fatalf("%v %v: exit %d (%v), stdout %q stderr %q", tc.args, tc.env, code, err, out.String(), errb.String())
		}
		if tc.says == "" && errb.Len() != 0 || tc.says != "" && (!strings.HasPrefix(errb.String(), tc.says) || strings.Count(errb.String(), "\n") != 1) {
			t.Fatalf("%v %v: stderr %q, want one line starting %q", tc.args, tc.env, errb.String(), tc.says)
		}
		if left, _ := os.ReadDir(work); len(left) != 0 {
			t.Fatalf("%v %v: --check-settings created %v", tc.args, tc.env, left)
		}
	}
	// A malformed GOMEMLIMIT stops the Go runtime itself before main (docs/agent.md): its fatal
	// error, exit 2, nothing created. vpcnetd's own check (TestRuntimeSettingsInProcess) cannot
	// run first in the binary.
	for _, args := range [][]string{nil, {"--check-settings"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH")}, base...), "GOMEMLIMIT=lots")
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "malformed GOMEMLIMIT") {
			t.Fatalf("%v GOMEMLIMIT=lots: exit %d, output %q", args, code, out)
		}
		if left, _ := os.ReadDir(work); len(left) != 0 {
			t.Fatalf("%v GOMEMLIMIT=lots: created %v", args, left)
		}
	}
}

// TestRuntimeSettingsInProcess: run refuses the Go runtime's variables it is given in its
// environment as the runtime would read them, GOMEMLIMIT included (which in the binary the
// runtime refuses first), with the settings' one line and exit 2, before anything is created.
func TestRuntimeSettingsInProcess(t *testing.T) {
	for _, tc := range []struct{ env, says string }{
		{"GOMAXPROCS=abc", `vpcnetd: GOMAXPROCS: "abc" is not a whole number above 0`},
		{"GOMAXPROCS= 2", `vpcnetd: GOMAXPROCS: " 2" `},
		{"GOGC=x", `vpcnetd: GOGC: "x" `},
		{"GOGC=OFF", `vpcnetd: GOGC: "OFF" `},
		{"GOMEMLIMIT=lots", `vpcnetd: GOMEMLIMIT: "lots" is not a byte count`},
		{"GOMEMLIMIT=16MB", `vpcnetd: GOMEMLIMIT: "16MB" `},
		{"GOMEMLIMIT=-1", `vpcnetd: GOMEMLIMIT: "-1" `},
		{"GOMEMLIMIT=9999999999TiB", `vpcnetd: GOMEMLIMIT: `},
	} {
		for _, args := range [][]string{nil, {"--check-settings"}} {
			dir := t.TempDir()
			env := []string{"VPCNET_STATE_DIR=" + dir + "/state", "VPCNET_SOCKET=" + dir + "/run/x.sock", "VPCNET_CNI_CONF_DIR=" + dir + "/net.d",
				"VPCNET_METRICS_ADDR=", "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:1", "AWS_EC2_ENDPOINT=http://127.0.0.1:1", "AWS_REGION=us-east-1",
				"VPCNET_HOST_NETWORKING=false", tc.env}
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			code := run(ctx, args, env, &out, &errb)
			cancel()
			if code != 2 || !strings.HasPrefix(errb.String(), tc.says) || strings.Count(errb.String(), "\n") != 1 {
				t.Errorf("%v %s: exit %d, stderr %q", args, tc.env, code, errb.String())
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("%v %s: a refused start created %v", args, tc.env, left)
			}
		}
	}
}

func TestFlagsOverEnvironment(t *testing.T) {
	values, _, err := gather([]string{"--warm-ip-target=7", "--IP_COOLDOWN_PERIOD=5"}, []string{"WARM_IP_TARGET=3", "MAX_PODS=20", "UNRELATED=1"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parse(values)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Pool.WarmIPTarget != 7 || cfg.Pool.MaxPods != 20 || cfg.Pool.Cooldown != 5*time.Second || cfg.Pool.WarmENITarget != 1 || !cfg.HostNetworking || cfg.MTU != 9001 {
		t.Fatalf("config %+v", cfg)
	}
	if cfg.Socket != "/run/vpcnet/vpcnetd.sock" || cfg.MetricsAddr != "127.0.0.1:61678" || cfg.Cloud.Cluster != "vpcnet" || cfg.Pool.ReleaseDelay != 30*time.Second || cfg.Pool.WarmENIReleaseDelay != 10*time.Second {
		t.Fatalf("defaults %+v", cfg)
	}
}

func TestEndpointPrecedence(t *testing.T) {
	values, _, _ := gather(nil, []string{"AWS_ENDPOINT_URL=http://all", "AWS_ENDPOINT_URL_EC2=http://ec2", "AWS_EC2_ENDPOINT=http://ours"})
	cfg, err := parse(values)
	if err != nil || cfg.Cloud.EC2Endpoint != "http://ours" {
		t.Fatalf("%q %v", cfg.Cloud.EC2Endpoint, err)
	}
	values, _, _ = gather(nil, []string{"AWS_ENDPOINT_URL=http://all", "AWS_ENDPOINT_URL_EC2=http://ec2"})
	if cfg, _ := parse(values); cfg.Cloud.EC2Endpoint != "http://ec2" {
		t.Fatalf("%q", cfg.Cloud.EC2Endpoint)
	}
}
