// Package cni implements the vpcnet-cni plugin verbs (ADD, DEL, CHECK, GC, STATUS; VERSION comes
// from skel): it asks the node agent for a VPC address over the agent's unix socket and wires the
// pod through internal/dataplane.
package cni

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/vpcnet/vpcnet/internal/agentapi"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

// DefaultStateDir keeps what DEL needs from ADD, and the releases waiting for the agent.
const DefaultStateDir = "/var/lib/vpcnet/cni"

// MTU bounds accepted in the config.
const (
	MinMTU = 576
	MaxMTU = 65535
)

// Supported lists the CNI spec versions the plugin speaks.
var Supported = version.PluginSupports("0.4.0", "1.0.0", "1.1.0")

// NetConf is the plugin's configuration: the standard fields plus ours.
type NetConf struct {
	types.PluginConf
	AgentSocket string `json:"agentSocket,omitempty"`
	MTU         int    `json:"mtu,omitempty"`
	VethPrefix  string `json:"vethPrefix,omitempty"`
	StateDir    string `json:"stateDir,omitempty"`
	// StatusGracePeriod is how long STATUS keeps answering "ready" while an agent that was
	// working cannot be reached (a restart, a rollout): a Go duration, default 60s, "0s" for none.
	StatusGracePeriod string `json:"statusGracePeriod,omitempty"`

	grace time.Duration
}

// DefaultStatusGracePeriod is StatusGracePeriod's default.
const DefaultStatusGracePeriod = 60 * time.Second

// ParseConfig decodes and checks the plugin config from stdin, filling defaults. Errors are CNI
// errors: 6 for undecodable JSON, 7 naming the field that is wrong (a name that is not a
// spec-conforming network name of at most MaxNetworkName characters included).
func ParseConfig(stdin []byte) (*NetConf, error) {
	conf := &NetConf{}
	if err := json.Unmarshal(stdin, conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "cannot decode the network config", err.Error())
	}
	if err := checkNetworkName(conf.Name); err != nil {
		return nil, err
	}
	if conf.AgentSocket == "" {
		conf.AgentSocket = agentapi.DefaultSocket
	}
	if !filepath.IsAbs(conf.AgentSocket) {
		return nil, fieldError("agentSocket", fmt.Sprintf("%q is not an absolute path", conf.AgentSocket))
	}
	if conf.StateDir == "" {
		conf.StateDir = DefaultStateDir
	}
	if !filepath.IsAbs(conf.StateDir) {
		return nil, fieldError("stateDir", fmt.Sprintf("%q is not an absolute path", conf.StateDir))
	}
	if conf.MTU == 0 {
		conf.MTU = dataplane.DefaultMTU
	}
	if conf.MTU < MinMTU || conf.MTU > MaxMTU {
		return nil, fieldError("mtu", fmt.Sprintf("%d is outside %d..%d", conf.MTU, MinMTU, MaxMTU))
	}
	if conf.VethPrefix == "" {
		conf.VethPrefix = dataplane.DefaultVethPrefix
	}
	if err := dataplane.ValidVethPrefix(conf.VethPrefix); err != nil {
		return nil, fieldError("vethPrefix", err.Error())
	}
	conf.grace = DefaultStatusGracePeriod
	if conf.StatusGracePeriod != "" {
		d, err := time.ParseDuration(conf.StatusGracePeriod)
		if err != nil || d < 0 {
			return nil, fieldError("statusGracePeriod", fmt.Sprintf("%q is not a duration of 0s or more", conf.StatusGracePeriod))
		}
		conf.grace = d
	}
	if conf.RawPrevResult != nil {
		if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "cannot decode prevResult", err.Error())
		}
	}
	return conf, nil
}

func fieldError(field, problem string) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("config field %q %s", field, problem), "")
}

// PodArgs are the CNI_ARGS the plugin reads (Kubernetes runtimes pass them).
type PodArgs struct {
	types.CommonArgs
	K8S_POD_NAMESPACE          types.UnmarshallableString
	K8S_POD_NAME               types.UnmarshallableString
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString
	K8S_POD_UID                types.UnmarshallableString
}

// ParseArgs decodes CNI_ARGS ("K=V;K=V"). Unknown keys are an error unless IgnoreUnknown=1.
// Errors are CNI code 4 (invalid environment variable).
func ParseArgs(s string) (*PodArgs, error) {
	a := &PodArgs{}
	if err := types.LoadArgs(s, a); err != nil {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_ARGS: "+err.Error(), "")
	}
	return a, nil
}
