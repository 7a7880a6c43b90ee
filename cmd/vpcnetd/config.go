package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/dataplane"
	"github.com/vpcnet/vpcnet/internal/ipam"
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
	{"VPCNET_POOL_RELEASE_DELAY", ipam.DefaultReleaseDelay.String(), "how long the pool stays above its warm target before the surplus is released, all at once, under WARM_IP_TARGET / MINIMUM_IP_TARGET, prefix delegation and the adaptive mode, where it also sizes the top-up batch (seconds or a duration; 0 releases at once)", durVar(func(c *agent.Config) *time.Duration { return &c.Pool.ReleaseDelay })},
	{"VPCNET_WARM_ENI_RELEASE_DELAY", ipam.DefaultWarmENIReleaseDelay.String(), "under WARM_ENI_TARGET: how long an unused ENI beyond the target is kept before it is detached and deleted (seconds or a duration; 0 frees it at once)", durVar(func(c *agent.Config) *time.Duration { return &c.Pool.WarmENIReleaseDelay })},
	{"VPCNET_WARM_POOL", "aws", "aws: the pool follows WARM_ENI_TARGET / WARM_IP_TARGET / MINIMUM_IP_TARGET / WARM_PREFIX_TARGET as the AWS VPC CNI does; adaptive: the agent sizes it from the pod start rate and the cloud's replenish latency so pods need not wait (WARM_IP_TARGET and MINIMUM_IP_TARGET must be unset)", warmPoolVar},
	{"VPCNET_ADD_WAIT", "5s", "how long an ADD that finds no free address waits for one the pool is fetching before it answers try-again (CNI code 11); 0 answers at once (seconds or a duration, at most 15s: the plugin gives the agent 20s)", durMaxVar(15*time.Second, func(c *agent.Config) *time.Duration { return &c.AddWait })},
	{"MAX_PODS", "", "hard cap on pod addresses the node holds (default: what its ENIs can hold)", posIntVar(func(c *agent.Config) *int { return &c.Pool.MaxPods })},
	{"AWS_VPC_K8S_CNI_EXTERNALSNAT", "false", "SNAT happens outside the node (NAT gateway): no SNAT rules on the node", boolVar(func(c *agent.Config) *bool { return &c.ExternalSNAT })},
	{"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "", "comma-separated CIDRs pods reach without SNAT, besides the VPC's", cidrsVar},
	{"AWS_VPC_ENI_MTU", "9001", "MTU of ENIs and pod interfaces (576-9001)", mtuVar},
	{"AWS_VPC_K8S_CNI_VETHPREFIX", "eni", "prefix of host-side pod veth names (letters, digits, - and _; not eth, lo, vlan)", vethVar},
	{"VPCNET_SOCKET", agentapi.DefaultSocket, "absolute path of the unix socket the plugin talks to (its directory is made 0700 only if missing; socket 0600); must not name an existing file that is not a socket", socketVar},
	{"VPCNET_STATE_DIR", "/var/lib/vpcnet", "absolute path where the allocation store (ipam/), the plugin's records (cni/) and the agent's lock live", dirVar("VPCNET_STATE_DIR", func(c *agent.Config) *string { return &c.StateDir })},
	{"VPCNET_CNI_CONF_DIR", "/etc/cni/net.d", "absolute path where the CNI config is written once the agent can serve an address", dirVar("VPCNET_CNI_CONF_DIR", func(c *agent.Config) *string { return &c.CNIConfDir })},
	{"VPCNET_CNI_CONF_NAME", "10-vpcnet.conflist", "file name of the CNI config: a plain name ending in .conflist, no path separator", confNameVar},
	{"VPCNET_CNI_PORTMAP", "false", "chain upstream's portmap plugin after vpcnet-cni in the CNI config (capability portMappings, snat), so pods' hostPort works; the runtime's CNI bin directory must hold portmap", boolVar(func(c *agent.Config) *bool { return &c.PortMap })},
	{"VPCNET_METRICS_ADDR", "127.0.0.1:61678", "loopback host:port for /metrics, /healthz and /v1/*; empty disables", metricsAddrVar},
	{"VPCNET_CLUSTER_NAME", "vpcnet", "cluster name tagged on the ENIs the agent creates (1-256 printable characters, an EC2 tag value)", clusterVar},
	{"VPCNET_HOST_NETWORKING", "true", "set up ENI devices, routing tables and SNAT in the agent's namespace; false: addresses only", boolVar(func(c *agent.Config) *bool { return &c.HostNetworking })},
	{"VPCNET_BLOCK_POD_IMDS", "false", "with host networking, drop pods' traffic to IMDS (169.254.169.254) in nftables, so pods cannot use the node's instance role; the node's own IMDS access is kept", boolVar(func(c *agent.Config) *bool { return &c.BlockPodIMDS })},
	{"VPCNET_INSTANCE_TYPES", "", "absolute path of an instance-type CSV used when DescribeInstanceTypes fails (default: built-in catalog); read and checked at start", catalogVar},
	{"VPCNET_RESYNC_PERIOD", "30s", "how often the pool is looked at when nothing happens, and how long IMDS may be unreadable before EC2 is described instead; EC2 is not polled while IMDS agrees with the agent (at least 1s)", durMinVar(time.Second, func(c *agent.Config) *time.Duration { return &c.Resync })},
	{"VPCNET_POD_GC_GRACE", "5m", "in a Kubernetes cluster: how long a pod must be gone from the API server's pods on this node before the address it held is released, if its sandbox's network is gone too (0 turns this GC off; the runtime's CNI GC stays)", durVar(func(c *agent.Config) *time.Duration { return &c.PodGCGrace })},
	{"VPCNET_DETACHED_ENI_GRACE", "5m", "detached ENIs this cluster created are deleted after this long (at least 1s)", durMinVar(time.Second, func(c *agent.Config) *time.Duration { return &c.DetachedGrace })},
	{"VPCNET_DETACHED_ENI_SWEEP", "1h", "mean time between a node's sweeps for detached ENIs of the cluster, ±25% jitter (one DescribeNetworkInterfaces each; also after InsufficientFreeAddressesInSubnet; at least 1s)", durMinVar(time.Second, func(c *agent.Config) *time.Duration { return &c.SweepPeriod })},
	{"VPCNET_SUBNET_BACKOFF", "5s", "first wait after InsufficientFreeAddressesInSubnet (at least 10ms); doubles per failure up to 2m", durMinVar(10*time.Millisecond, func(c *agent.Config) *time.Duration { return &c.Pool.Backoff })},
	{"VPCNET_PREFIX_FALLBACK", "5m", "how long prefix mode uses single addresses after InsufficientCidrBlocks", durVar(func(c *agent.Config) *time.Duration { return &c.Pool.PrefixFallback })},
	{"VPCNET_EC2_QPS", "10", "client-side limit on EC2 requests per second, retries included (a finite number > 0)", qpsVar},
	{"VPCNET_EC2_BURST", "20", "burst of the EC2 rate limit", posIntVar(func(c *agent.Config) *int { return &c.Cloud.Burst })},
	{"VPCNET_EC2_MAX_ATTEMPTS", "10", "attempts per EC2 call on throttling and 5xx, with jittered backoff", posIntVar(func(c *agent.Config) *int { return &c.Cloud.MaxAttempts })},
	{"VPCNET_EC2_MAX_BACKOFF", "20s", "longest wait between attempts (at least 10ms)", durMinVar(10*time.Millisecond, func(c *agent.Config) *time.Duration { return &c.Cloud.MaxBackoff })},
	{"AWS_EC2_ENDPOINT", "", "EC2 endpoint URL (first of AWS_EC2_ENDPOINT, AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL)", endpointVar},
	{"AWS_ENDPOINT_URL_EC2", "", "EC2 endpoint URL, AWS SDK convention", endpointVar},
	{"AWS_ENDPOINT_URL", "", "endpoint URL for all AWS services, AWS SDK convention", endpointVar},
	{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "", "IMDS endpoint (default http://169.254.169.254)", urlVar(func(c *agent.Config) *string { return &c.Cloud.IMDSEndpoint })},
	{"AWS_REGION", "", "region, such as us-east-1 (default: from IMDS)", regionVar},
	{"VPCNET_LOG_LEVEL", "info", "debug, info, warn or error", logLevelVar},
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
	if c.Pool.Adaptive && c.Pool.IPTargets() {
		return c, fmt.Errorf("VPCNET_WARM_POOL: \"adaptive\" sizes the pool itself; unset WARM_IP_TARGET and MINIMUM_IP_TARGET, or use VPCNET_WARM_POOL=aws")
	}
	if c.Pool.BackoffMax == 0 {
		c.Pool.BackoffMax = max(2*time.Minute, c.Pool.Backoff)
	}
	return c, nil
}

// maxCount bounds every count setting: far above any node's pods or ENIs, far below an overflow
// when counts are multiplied (ENIs × addresses × 16 per prefix).
const maxCount = 100000

func intVar(f func(*agent.Config) *int) func(*agent.Config, string) error {
	return func(c *agent.Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > maxCount {
			return fmt.Errorf("is not a whole number from 0 to %d", maxCount)
		}
		*f(c) = n
		return nil
	}
}

func posIntVar(f func(*agent.Config) *int) func(*agent.Config, string) error {
	return func(c *agent.Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > maxCount {
			return fmt.Errorf("is not a whole number from 1 to %d", maxCount)
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

// durVar takes a Go duration ("30s") or, as the AWS CNI does, a bare number of seconds.
func durVar(f func(*agent.Config) *time.Duration) func(*agent.Config, string) error {
	return durMinVar(0, f)
}

// durMinVar is durVar with a floor: a period that drives a loop or a back-off must not be so
// short that the loop spins (VPCNET_RESYNC_PERIOD=0 would busy-loop a core).
func durMinVar(least time.Duration, f func(*agent.Config) *time.Duration) func(*agent.Config, string) error {
	return func(c *agent.Config, v string) error {
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "-") {
			return fmt.Errorf("must not be negative")
		}
		var d time.Duration
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			if n > math.MaxInt64/int64(time.Second) {
				return fmt.Errorf("is too long (at most %d seconds)", math.MaxInt64/int64(time.Second))
			}
			d = time.Duration(n) * time.Second
		} else if d, err = time.ParseDuration(v); err != nil || d < 0 {
			return fmt.Errorf("is not a duration (30s, 5m) or a number of seconds")
		}
		if d < least {
			return fmt.Errorf("is shorter than %s, the least this setting takes", least)
		}
		*f(c) = d
		return nil
	}
}

// warmPoolVar takes "aws" or "adaptive" (issue 16 item 3).
func warmPoolVar(c *agent.Config, v string) error {
	switch strings.TrimSpace(v) {
	case "aws":
		c.Pool.Adaptive = false
	case "adaptive":
		c.Pool.Adaptive = true
	default:
		return fmt.Errorf("is not aws or adaptive")
	}
	return nil
}

// durMaxVar is durVar with a ceiling.
func durMaxVar(most time.Duration, f func(*agent.Config) *time.Duration) func(*agent.Config, string) error {
	set := durVar(f)
	return func(c *agent.Config, v string) error {
		var d time.Duration
		if err := set(c, v); err != nil {
			return err
		}
		if d = *f(c); d > most {
			return fmt.Errorf("is longer than %s, the most this setting takes", most)
		}
		return nil
	}
}

func urlVar(f func(*agent.Config) *string) func(*agent.Config, string) error {
	return func(c *agent.Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("is not an http:// or https:// URL with a host")
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
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > maxCount {
		return fmt.Errorf("is not a number above 0 and at most %d", maxCount)
	}
	c.Cloud.RatePerSec = f
	return nil
}

// absPath checks a path setting: absolute, since the plugin and the agent do not share a
// working directory (a relative VPCNET_SOCKET writes a CNI config every ADD rejects).
func absPath(v string) error {
	switch {
	case v == "":
		return fmt.Errorf("is empty; an absolute path is needed")
	case strings.ContainsRune(v, 0):
		return fmt.Errorf("contains a NUL byte")
	case !filepath.IsAbs(v):
		return fmt.Errorf("is not an absolute path")
	}
	return nil
}

func dirVar(name string, f func(*agent.Config) *string) func(*agent.Config, string) error {
	return func(c *agent.Config, v string) error {
		if err := absPath(v); err != nil {
			return err
		}
		if filepath.Clean(v) == "/" {
			return fmt.Errorf("is the root directory")
		}
		*f(c) = filepath.Clean(v)
		return nil
	}
}

// maxSocketPath is the longest unix socket path Linux takes (sun_path is 108 bytes, NUL included).
const maxSocketPath = 107

func socketVar(c *agent.Config, v string) error {
	if err := absPath(v); err != nil {
		return err
	}
	v = filepath.Clean(v)
	if len(v) > maxSocketPath {
		return fmt.Errorf("is %d bytes long; a unix socket path is at most %d", len(v), maxSocketPath)
	}
	if v == "/" {
		return fmt.Errorf("is the root directory")
	}
	c.Socket = v
	return nil
}

func confNameVar(c *agent.Config, v string) error {
	switch {
	case strings.ContainsAny(v, "/\\\x00"):
		return fmt.Errorf("is not a plain file name (no path separator)")
	case v == "" || v == "." || v == ".." || strings.HasPrefix(v, "."):
		return fmt.Errorf("is not a file name (empty or starting with a dot)")
	case !strings.HasSuffix(v, ".conflist") || v == ".conflist":
		return fmt.Errorf("does not end in .conflist (the agent writes a network configuration list)")
	case len(v) > 255:
		return fmt.Errorf("is longer than 255 bytes")
	}
	c.CNIConfName = v
	return nil
}

// metricsAddrVar takes a loopback host:port (or nothing, which disables the listener):
// introspection shows the node's pods and must not be reachable from elsewhere.
func metricsAddrVar(c *agent.Config, v string) error {
	if v == "" {
		c.MetricsAddr = ""
		return nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("is not host:port")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || strconv.FormatUint(n, 10) != port {
		return fmt.Errorf("has no port number from 0 to 65535")
	}
	if ip, err := netip.ParseAddr(host); (err != nil && host != "localhost") || (err == nil && !ip.IsLoopback()) {
		return fmt.Errorf("is not a loopback address (introspection is served on loopback only)")
	}
	c.MetricsAddr = v
	return nil
}

// clusterVar takes an EC2 tag value: 1 to 256 letters, digits, spaces and + - = . _ : / @.
func clusterVar(c *agent.Config, v string) error {
	if v == "" || utf8.RuneCountInString(v) > 256 || !utf8.ValidString(v) {
		return fmt.Errorf("is not 1 to 256 characters")
	}
	for _, r := range v {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune(" +-=._:/@", r) {
			return fmt.Errorf("has %q, which an EC2 tag value cannot hold", r)
		}
	}
	c.ClusterName = v
	return nil
}

func regionVar(c *agent.Config, v string) error {
	if len(v) > 32 || !regionRE.MatchString(v) {
		return fmt.Errorf("is not a region name such as us-east-1")
	}
	c.Cloud.Region = v
	return nil
}

var regionRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// catalogVar reads the instance-type CSV now, so a bad file stops the start rather than the
// first fallback from DescribeInstanceTypes.
func catalogVar(c *agent.Config, v string) error {
	if err := absPath(v); err != nil {
		return err
	}
	// Only a regular file of sane size is read: /dev/zero or a FIFO would hang the start.
	if fi, err := os.Stat(v); err != nil {
		return fmt.Errorf("does not load: %s", oneLine(err.Error()))
	} else if !fi.Mode().IsRegular() || fi.Size() > 16<<20 {
		return fmt.Errorf("is not a regular file of at most 16 MiB")
	}
	if _, err := catalog.Load(v); err != nil {
		return fmt.Errorf("does not load: %s", oneLine(err.Error()))
	}
	c.InstanceTypes = v
	return nil
}

func logLevelVar(_ *agent.Config, v string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(v)); err != nil {
		return fmt.Errorf("is not debug, info, warn or error")
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// checkPaths looks (and only looks) at the paths the settings name, before anything is
// created: a socket path naming an existing file that is not a socket is refused rather than
// deleted, and a directory setting naming a file is refused rather than failing later.
func checkPaths(c agent.Config) error {
	if fi, err := os.Lstat(c.Socket); err == nil && fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("VPCNET_SOCKET: %q exists and is not a socket (%s); vpcnetd replaces only a socket", c.Socket, kind(fi))
	}
	for _, d := range []struct{ name, path string }{
		{"VPCNET_SOCKET", filepath.Dir(c.Socket)},
		{"VPCNET_STATE_DIR", c.StateDir},
		{"VPCNET_CNI_CONF_DIR", c.CNIConfDir},
	} {
		if err := notAFile(d.path); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(c.CNIConfDir, c.CNIConfName)); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("VPCNET_CNI_CONF_NAME: %q exists in %s and is not a regular file (%s)", c.CNIConfName, c.CNIConfDir, kind(fi))
	}
	return nil
}

// notAFile fails when path, or the nearest part of it that exists, is not a directory.
func notAFile(path string) error {
	for p := path; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%q is not a directory (%s)", p, kind(fi))
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			return fmt.Errorf("%q: %s", p, oneLine(err.Error()))
		}
	}
}

func kind(fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeDevice != 0:
		return "a device"
	default:
		return "not a socket"
	}
}
