package main

import (
	"bytes"
	"context"
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
		"MAX_ENI", "IP_COOLDOWN_PERIOD", "VPCNET_POOL_RELEASE_DELAY", "MAX_PODS", "AWS_VPC_K8S_CNI_EXTERNALSNAT", "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "AWS_VPC_ENI_MTU",
		"AWS_VPC_K8S_CNI_VETHPREFIX", "VPCNET_SOCKET", "VPCNET_STATE_DIR", "VPCNET_CNI_CONF_DIR", "VPCNET_CNI_CONF_NAME", "VPCNET_METRICS_ADDR",
		"VPCNET_CLUSTER_NAME", "VPCNET_HOST_NETWORKING", "VPCNET_INSTANCE_TYPES", "AWS_EC2_ENDPOINT", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_REGION"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %s", want)
		}
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
		{env: []string{"IP_COOLDOWN_PERIOD=99999999999"}, names: "IP_COOLDOWN_PERIOD", says: "too long"},
		{args: []string{"--vpcnet-pool-release-delay=later"}, names: "VPCNET_POOL_RELEASE_DELAY"},
		{env: []string{"AWS_VPC_ENI_MTU=100000"}, names: "AWS_VPC_ENI_MTU"},
		{env: []string{"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=10.0.0.0/8,bad"}, names: "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"},
		{env: []string{"AWS_EC2_ENDPOINT=localhost:1"}, names: "AWS_EC2_ENDPOINT"},
		{env: []string{"VPCNET_LOG_LEVEL=loud"}, names: "VPCNET_LOG_LEVEL"},
		{args: []string{"--max-eni=0"}, names: "MAX_ENI"},
		{args: []string{"--MAX_PODS=x"}, env: []string{"MAX_PODS=10"}, names: "MAX_PODS"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), tc.args, tc.env, &out, &errb)
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], tc.names) || !strings.Contains(lines[0], tc.says) {
			t.Errorf("%v %v: exit %d, stderr %q", tc.args, tc.env, code, errb.String())
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
	if cfg.Socket != "/run/vpcnet/vpcnetd.sock" || cfg.MetricsAddr != "127.0.0.1:61678" || cfg.Cloud.Cluster != "vpcnet" || cfg.Pool.ReleaseDelay != 30*time.Second {
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
