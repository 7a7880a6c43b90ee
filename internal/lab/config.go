package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vpcnet/vpcnet/internal/catalog"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// Config is a lab's settings, written by `lab up` to lab.json and read by the controller.
type Config struct {
	Name         string         `json:"name"`
	VPCCIDR      netip.Prefix   `json:"vpcCidr"`
	Subnets      []netip.Prefix `json:"subnets"`
	InstanceType string         `json:"instanceType"`
	// Agent holds vpcnetd settings by their environment names (WARM_IP_TARGET, ...).
	Agent map[string]string `json:"agent,omitempty"`
	// EC2Latency delays vpcsim's answer (and the change) by EC2 action, e.g.
	// AttachNetworkInterface: 1s, as the real EC2 takes time to attach.
	EC2Latency map[string]Duration `json:"ec2Latency,omitempty"`
	// AgentBin and CNIBin are the vpcnetd and vpcnet-cni executables.
	AgentBin string `json:"agentBin"`
	CNIBin   string `json:"cniBin"`
	// Runtime is what runs pods: "" or RuntimeNone for bare namespaces, "kubernetes" for a
	// real cluster (see Runtime).
	Runtime string `json:"runtime,omitempty"`
	// AgentMode is who runs each node's vpcnetd: "" or AgentSupervised for the lab's own
	// supervised process, AgentDaemonSet for deploy/'s DaemonSet (Runtime kubernetes only).
	AgentMode string `json:"agentMode,omitempty"`
	// DeferAgentInstall (AgentDaemonSet only) leaves deploy/'s DaemonSet unapplied at start:
	// nodes register NotReady (kubelet: "cni plugin not initialized") until
	// k8s.InstallAgent applies it, as on EKS before the VPC CNI is installed. The demo uses it
	// to run the seed's order: cluster with nodes, then `kubectl apply`.
	DeferAgentInstall bool `json:"deferAgentInstall,omitempty"`
}

// Agent modes (Config.AgentMode, `lab up --agent`).
const (
	AgentSupervised = "supervised"
	AgentDaemonSet  = "daemonset"
)

// DaemonSetAgent reports whether the nodes' vpcnetd is deploy/'s DaemonSet, not the lab's.
func (c Config) DaemonSetAgent() bool { return c.AgentMode == AgentDaemonSet }

// DefaultConfig is the seed's example: VPC 10.10.0.0/16 with subnet 10.10.1.0/24.
func DefaultConfig(name string) Config {
	return Config{
		Name:         name,
		VPCCIDR:      netip.MustParsePrefix("10.10.0.0/16"),
		Subnets:      []netip.Prefix{netip.MustParsePrefix("10.10.1.0/24")},
		InstanceType: "t3.medium",
	}
}

// AgentSettings are the vpcnetd settings `lab up` accepts, as environment names.
var AgentSettings = []string{"WARM_ENI_TARGET", "WARM_IP_TARGET", "MINIMUM_IP_TARGET", "ENABLE_PREFIX_DELEGATION",
	"WARM_PREFIX_TARGET", "MAX_ENI", "IP_COOLDOWN_PERIOD", "VPCNET_POOL_RELEASE_DELAY", "VPCNET_WARM_ENI_RELEASE_DELAY", "VPCNET_WARM_POOL", "VPCNET_ADD_WAIT", "MAX_PODS", "AWS_VPC_K8S_CNI_EXTERNALSNAT",
	"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "AWS_VPC_ENI_MTU", "VPCNET_POD_GC_GRACE", "VPCNET_DETACHED_ENI_SWEEP"}

// FlagName turns an agent setting into its flag: WARM_IP_TARGET -> warm-ip-target.
func FlagName(setting string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(setting, "AWS_VPC_K8S_CNI_"), "AWS_VPC_")
	return strings.ToLower(strings.ReplaceAll(s, "_", "-"))
}

// Validate checks the settings a user can get wrong.
func (c Config) Validate() error {
	switch c.AgentMode {
	case "", AgentSupervised:
	case AgentDaemonSet:
		if c.Runtime != "kubernetes" {
			return fmt.Errorf("--agent daemonset needs --runtime kubernetes (the DaemonSet runs under kubelet), not runtime %q", c.Runtime)
		}
	default:
		return fmt.Errorf("--agent %q: want %s or %s", c.AgentMode, AgentSupervised, AgentDaemonSet)
	}
	if c.DeferAgentInstall && c.AgentMode != AgentDaemonSet {
		return fmt.Errorf("a deferred agent install needs --agent daemonset, not %q", c.AgentMode)
	}
	if err := ValidateName(c.Name); err != nil {
		return err
	}
	if !c.VPCCIDR.Addr().Is4() || c.VPCCIDR.Bits() < 16 || c.VPCCIDR.Bits() > 28 || c.VPCCIDR.Masked() != c.VPCCIDR {
		return fmt.Errorf("VPC CIDR %s: want an IPv4 network between /16 and /28, e.g. 10.10.0.0/16", c.VPCCIDR)
	}
	if _, err := catalog.Builtin().Lookup(c.InstanceType); err != nil {
		return err
	}
	if len(c.Subnets) == 0 {
		return fmt.Errorf("a lab needs at least one subnet")
	}
	for i, s := range c.Subnets {
		if !c.VPCCIDR.Contains(s.Addr()) || s.Bits() < c.VPCCIDR.Bits() || s.Bits() > 28 || s.Masked() != s {
			return fmt.Errorf("subnet %s: want a network of /%d to /28 inside the VPC %s", s, c.VPCCIDR.Bits(), c.VPCCIDR)
		}
		for _, o := range c.Subnets[:i] {
			if o.Overlaps(s) {
				return fmt.Errorf("subnets %s and %s overlap", o, s)
			}
		}
	}
	if _, err := runtimeOf(c); err != nil {
		return err
	}
	for k := range c.Agent {
		if !isAgentSetting(k) {
			return fmt.Errorf("unknown agent setting %s", k)
		}
	}
	return nil
}

func isAgentSetting(k string) bool {
	for _, s := range AgentSettings {
		if s == k {
			return true
		}
	}
	return false
}

// AgentEnv returns the agent settings as sorted KEY=value pairs.
func (c Config) AgentEnv() []string {
	out := make([]string, 0, len(c.Agent))
	for k, v := range c.Agent {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// WriteConfig stores c in the lab's directory.
func WriteConfig(p Paths, c Config) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(p.Config(), append(b, '\n'), 0o600)
}

// ReadConfig loads the lab's settings.
func ReadConfig(p Paths) (Config, error) {
	var c Config
	b, err := os.ReadFile(p.Config())
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", p.Config(), err)
	}
	return c, nil
}

// Duration is a time.Duration written as "1.5s" in JSON.
type Duration time.Duration

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a duration such as "250ms".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// ParseLatency reads one ACTION=DURATION, e.g. AttachNetworkInterface=1s, with vpcsim's own
// parser, so an action vpcsim does not serve (a typo) is refused instead of silently ignored;
// ACTION may be * for every action.
func ParseLatency(s string) (string, Duration, error) {
	m, err := vpcsim.ParseLatency(s)
	if err == nil && len(m) != 1 {
		err = fmt.Errorf("want exactly one ACTION=DURATION")
	}
	if err != nil {
		return "", 0, fmt.Errorf("EC2 latency %q: %v (e.g. AttachNetworkInterface=1s)", s, err)
	}
	var action string
	var d time.Duration
	for action, d = range m {
	}
	return action, Duration(d), nil
}
