package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpcnet/vpcnet/internal/catalog"
)

func TestSimServeBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--latency", "Nope=1s"}, "--latency"},
		{[]string{"--latency", "AttachNetworkInterface=soon"}, "--latency"},
		{[]string{"--throttle", "*=5"}, "--throttle"},
		{[]string{"--fail", "RunInstances=1.5"}, "--fail"},
		{[]string{"--deny", "Nope"}, "--deny"},
		{[]string{"--region", "mars"}, "--region"},
		{[]string{"--access-key-id", "AKIAONLY"}, "--access-key-id"},
		{[]string{"--imds-hop-limit", "0"}, "--imds-hop-limit"},
		{[]string{"--exhaustion-error", "sometimes"}, "--exhaustion-error"},
		{[]string{"--role-credential-ttl", "1ms"}, "--role-credential-ttl"},
		{[]string{"--listen", "nowhere"}, "--listen"},
		{[]string{"--imds-listen", "nowhere"}, "--imds-listen"},
		{[]string{"--instance-types", "/does/not/exist.csv"}, "--instance-types"},
		{[]string{"--bogus"}, "bogus"},
	} {
		_, stderr, code := vpcnet(t, nil, append([]string{"sim", "serve"}, tc.args...)...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, tc.flag) {
			t.Errorf("%v: exit %d, stderr %q: want exit 2 and one line naming %s", tc.args, code, stderr, tc.flag)
		}
	}
}

func TestSimServeRunsUntilSignalled(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "sim", "serve", "--listen", "127.0.0.1:0", "--state", dir, "--imds-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "VPCNET_TEST_AS_CLI=1", catalog.EnvInstanceTypes+"=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	var endpoint, credsFile string
	deadline := time.Now().Add(60 * time.Second)
	var seen []string
	imdsShown := false
	for lines.Scan() && time.Now().Before(deadline) {
		line := lines.Text()
		seen = append(seen, line)
		if rest, ok := strings.CutPrefix(line, "EC2 endpoint "); ok {
			endpoint = strings.Fields(rest)[0]
		}
		if rest, ok := strings.CutPrefix(line, "operator credentials AWS_SHARED_CREDENTIALS_FILE="); ok {
			credsFile = strings.Fields(rest)[0]
		}
		imdsShown = imdsShown || strings.HasPrefix(line, "IMDS http://127.0.0.1:")
		if strings.HasPrefix(line, "per-instance IMDS") {
			break
		}
	}
	if endpoint == "" || !imdsShown || credsFile != filepath.Join(dir, "credentials") {
		t.Fatalf("output %q", seen)
	}
	// The operator credential in the file the server named signs calls; others are refused.
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"), config.WithSharedCredentialsFiles([]string{credsFile}),
		config.WithSharedConfigProfile("default"))
	if err != nil {
		t.Fatal(err)
	}
	c := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(endpoint) })
	if _, err := c.CreateVpc(context.Background(), &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	bad := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: credentials.NewStaticCredentialsProvider("x", "y", "")})
	if _, err := bad.CreateVpc(context.Background(), &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")}); err == nil || !strings.Contains(err.Error(), "AuthFailure") {
		t.Fatalf("a credential vpcsim did not issue: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("did not stop on SIGTERM")
	}
	if _, err := os.Stat(dir + "/state.json"); err != nil {
		t.Fatalf("no snapshot after shutdown: %v", err)
	}
}
