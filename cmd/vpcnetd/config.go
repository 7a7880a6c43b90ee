package main

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

// setting is one environment variable (and the flag of the same name).
type setting struct {
	name, def, help string
	set             func(c *agent.Config, v string) error
}

// settings lists every variable vpcnetd reads, with its default; --help prints this table.
var settings = []setting{
	{"WARM_ENI_TARGET", "1", "free addresses to keep, in units of one ENI's capacity (ignored when an IP target is set)", intVar(func(c *agent.Config) *int { return &c.Pool.WarmENITarget })},
	{"WARM_IP_TARGET", "", "free addresses to keep; set, it (or MINIMUM_IP_TARGET) replaces WARM_ENI_TARGET", intVar(func(c *agent.Config) *int { return &c.Pool.WarmIPTarget })},
	{"MINIMUM_IP_TARGET", "", "addresses to hold at least, free or not", intVar(func(c *agent.Config) *int { return &c.Pool.MinimumIPTarget })},
	{"ENABLE_PREFIX_DELEGATION", "false", "assign /28 prefixes to ENIs instead of single addresses (Nitro instances)", boolVar(func(c *agent.Config) *bool { return &c.Pool.PrefixDelegation })},
	{"WARM_PREFIX_TARGET", "1", "fully free /28 prefixes to keep in prefix mode, where WARM_ENI_TARGET does not apply; 0 adds a /28 when the last free address is taken (ignored when an IP target is set)", intVar(func(c *agent.Config) *int { return &c.Pool.WarmPrefixTarget })},
	{"MAX_ENI", "", "most ENIs to attach, the primary included (default: the instance type's limit)", posIntVar(func(c *agent.Config) *int { return &c.Pool.MaxENI })},
	{"IP_COOLDOWN_PERIOD", "30s", "how long a released address rests before reuse (seconds or a duration)", durVar(func(c *agent.Config) *time.Duration { return &c.Pool.Cooldown })},
	{"VPCNET_POOL_RELEASE_DELAY", "30s", "how long the pool stays above its warm target before the surplus is released, all at once (seconds or a duration; 0 releases at once)", durVar(func(c *agent.Config) *time.Duration { return &c.Pool.ReleaseDelay })},
	{"MAX_PODS", "", "hard cap on pod addresses the node holds (default: what its ENIs can hold)", posIntVar(func(c *agent.Config) *int { return &c.Pool.MaxPods })},
	{"AWS_VPC_K8S_CNI_EXTERNALSNAT", "false", "SNAT happens outside the node (NAT gateway): no SNAT rules on the node", boolVar(func(c *agent.Config) *bool { return &c.ExternalSNAT })},
	{"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "", "comma-separated CIDRs pods reach without SNAT, besides the VPC's", cidrsVar},
	{"AWS_VPC_ENI_MTU", "9001", "MTU of ENIs and pod interfaces (576-9001)", mtuVar},
	{"AWS_VPC_K8S_CNI_VETHPREFIX", "eni", "prefix of host-side pod veth names (letters, digits, - and _; not eth, lo, vlan)", vethVar},
	{"VPCNET_SOCKET", agentapi.DefaultSocket, "unix socket the plugin talks to (directory made 0700, socket 0600)", strVar(func(c *agent.Config) *string { return &c.Socket })},
	{"VPCNET_STATE_DIR", "/var/lib/vpcnet", "where the allocation store lives", strVar(func(c *agent.Config) *string { return &c.StateDir })},
	{"VPCNET_CNI_CONF_DIR", "/etc/cni/net.d", "where the CNI config is written once the agent can serve an address", strVar(func(c *agent.Config) *string { return &c.CNIConfDir })},
	{"VPCNET_CNI_CONF_NAME", "10-vpcnet.conflist", "file name of the CNI config", strVar(func(c *agent.Config) *string { return &c.CNIConfName })},
	{"VPCNET_METRICS_ADDR", "127.0.0.1:61678", "loopback address for /metrics, /healthz and /v1/*; empty disables", strVar(func(c *agent.Config) *string { return &c.MetricsAddr })},
	{"VPCNET_CLUSTER_NAME", "vpcnet", "cluster name tagged on the ENIs the agent creates", strVar(func(c *agent.Config) *string { return &c.ClusterName })},
	{"VPCNET_HOST_NETWORKING", "true", "set up ENI devices, routing tables and SNAT in the agent's namespace; false: addresses only", boolVar(func(c *agent.Config) *bool { return &c.HostNetworking })},
	{"VPCNET_INSTANCE_TYPES", "", "instance-type CSV used when DescribeInstanceTypes fails (default: built-in catalog)", strVar(func(c *agent.Config) *string { return &c.InstanceTypes })},
	{"VPCNET_RESYNC_PERIOD", "30s", "how often the pool is compared with EC2 when nothing happens", durVar(func(c *agent.Config) *time.Duration { return &c.Resync })},
	{"VPCNET_DETACHED_ENI_GRACE", "5m", "detached ENIs this cluster created are deleted after this long", durVar(func(c *agent.Config) *time.Duration { return &c.DetachedGrace })},
	{"VPCNET_SUBNET_BACKOFF", "5s", "first wait after InsufficientFreeAddressesInSubnet; doubles per failure up to 2m", durVar(func(c *agent.Config) *time.Duration { return &c.Pool.Backoff })},
	{"VPCNET_PREFIX_FALLBACK", "5m", "how long prefix mode uses single addresses after InsufficientCidrBlocks", durVar(func(c *agent.Config) *time.Duration { return &c.Pool.PrefixFallback })},
	{"VPCNET_EC2_QPS", "10", "client-side limit on EC2 requests per second, retries included", qpsVar},
	{"VPCNET_EC2_BURST", "20", "burst of the EC2 rate limit", posIntVar(func(c *agent.Config) *int { return &c.Cloud.Burst })},
	{"VPCNET_EC2_MAX_ATTEMPTS", "10", "attempts per EC2 call on throttling and 5xx, with jittered backoff", posIntVar(func(c *agent.Config) *int { return &c.Cloud.MaxAttempts })},
	{"VPCNET_EC2_MAX_BACKOFF", "20s", "longest wait between attempts", durVar(func(c *agent.Config) *time.Duration { return &c.Cloud.MaxBackoff })},
	{"AWS_EC2_ENDPOINT", "", "EC2 endpoint URL (first of AWS_EC2_ENDPOINT, AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL)", endpointVar},
	{"AWS_ENDPOINT_URL_EC2", "", "EC2 endpoint URL, AWS SDK convention", endpointVar},
	{"AWS_ENDPOINT_URL", "", "endpoint URL for all AWS services, AWS SDK convention", endpointVar},
	{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "", "IMDS endpoint (default http://169.254.169.254)", urlVar(func(c *agent.Config) *string { return &c.Cloud.IMDSEndpoint })},
	{"AWS_REGION", "", "region (default: from IMDS)", strVar(func(c *agent.Config) *string { return &c.Cloud.Region })},
	{"VPCNET_LOG_LEVEL", "info", "debug, info, warn or error", func(*agent.Config, string) error { return nil }},
}

// parse builds the configuration from values by variable name (flags over environment);
// an error names the variable.
func parse(values map[string]string) (agent.Config, error) {
	var c agent.Config
	for _, s := range settings {
		v, ok := values[s.name]
		if !ok {
			v = s.def
		}
		if v == "" && s.def == "" {
			continue
		}
		if err := s.set(&c, v); err != nil {
			return c, fmt.Errorf("%s: %q %v", s.name, v, err)
		}
	}
	if c.Cloud.EC2Endpoint == "" { // the first of the three endpoint variables wins
		for _, n := range []string{"AWS_EC2_ENDPOINT", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"} {
			if values[n] != "" {
				c.Cloud.EC2Endpoint = values[n]
				break
			}
		}
	}
	c.Cloud.Cluster = c.ClusterName
	if c.Pool.BackoffMax == 0 {
		c.Pool.BackoffMax = max(2*time.Minute, c.Pool.Backoff)
	}
	return c, nil
}

func intVar(f func(*agent.Config) *int) func(*agent.Config, string) error {
	return func(c *agent.Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return fmt.Errorf("is not a whole number >= 0")
		}
		*f(c) = n
		return nil
	}
}

func posIntVar(f func(*agent.Config) *int) func(*agent.Config, string) error {
	return func(c *agent.Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return fmt.Errorf("is not a whole number >= 1")
		}
		*f(c) = n
		return nil
	}
}

func boolVar(f func(*agent.Config) *bool) func(*agent.Config, string) error {
	return func(c *agent.Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("is not true or false")
		}
		*f(c) = b
		return nil
	}
}

func strVar(f func(*agent.Config) *string) func(*agent.Config, string) error {
	return func(c *agent.Config, v string) error { *f(c) = v; return nil }
}

// durVar takes a Go duration ("30s") or, as the AWS CNI does, a bare number of seconds.
func durVar(f func(*agent.Config) *time.Duration) func(*agent.Config, string) error {
	return func(c *agent.Config, v string) error {
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "-") {
			return fmt.Errorf("must not be negative")
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			if n > math.MaxInt64/int64(time.Second) {
				return fmt.Errorf("is too long (at most %d seconds)", math.MaxInt64/int64(time.Second))
			}
			*f(c) = time.Duration(n) * time.Second
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("is not a duration (30s, 5m) or a number of seconds")
		}
		*f(c) = d
		return nil
	}
}

func urlVar(f func(*agent.Config) *string) func(*agent.Config, string) error {
	return func(c *agent.Config, v string) error {
		if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
			return fmt.Errorf("is not an http:// or https:// URL")
		}
		*f(c) = v
		return nil
	}
}

func endpointVar(c *agent.Config, v string) error {
	return urlVar(func(*agent.Config) *string { return new(string) })(c, v)
}

func cidrsVar(c *agent.Config, v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return fmt.Errorf("has %q, not an IPv4 CIDR", s)
		}
		c.ExcludeSNAT = append(c.ExcludeSNAT, p.Masked())
	}
	return nil
}

func mtuVar(c *agent.Config, v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 576 || n > 9001 {
		return fmt.Errorf("is not an MTU between 576 and 9001")
	}
	c.MTU = n
	return nil
}

func vethVar(c *agent.Config, v string) error {
	if err := dataplane.ValidVethPrefix(v); err != nil {
		return fmt.Errorf("is not usable: %v", err)
	}
	c.VethPrefix = v
	return nil
}

func qpsVar(c *agent.Config, v string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f <= 0 {
		return fmt.Errorf("is not a number > 0")
	}
	c.Cloud.RatePerSec = f
	return nil
}
