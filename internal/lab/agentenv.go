package lab

import (
	"os"

	"github.com/vpcnet/vpcnet/internal/lab/fabric"
)

// AgentCNIConfName is the file a lab node's vpcnetd writes its CNI config list to, once ready.
const AgentCNIConfName = "10-vpcnet.conflist"

// AgentEnv is a lab node's whole vpcnetd environment: the node's paths, the lab's EC2 and
// IMDS endpoints and the settings given to `lab up` (last, so they win). The controller starts each agent with it, and `lab up` runs `vpcnetd --check-settings`
// with it before it creates anything, so the two cannot drift.
func AgentEnv(cfg Config, n NodePaths) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=/root",
		"VPCNET_STATE_DIR=" + n.AgentState(),
		"VPCNET_SOCKET=" + n.AgentSocket(),
		"VPCNET_CNI_CONF_DIR=" + n.CNIConfDir(),
		"VPCNET_CNI_CONF_NAME=" + AgentCNIConfName,
		"VPCNET_HOST_NETWORKING=true",
		"VPCNET_BLOCK_POD_IMDS=true", // pods must not act as their node toward the cloud (issue 11 fault 9)
		"VPCNET_METRICS_ADDR=" + AgentMetricsAddr,
		"VPCNET_CLUSTER_NAME=" + cfg.Name,
		"AWS_EC2_ENDPOINT=http://" + fabric.EC2Addr.String(),
		"AWS_ENDPOINT_URL_EC2=http://" + fabric.EC2Addr.String(),
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://" + fabric.IMDSAddr.String(),
	}
	if cfg.Runtime == "kubernetes" {
		// kubelet passes hostPort mappings to the conflist's portmap (the node's /opt/cni/bin
		// gets it from the build cache, internal/lab/k8s).
		env = append(env, "VPCNET_CNI_PORTMAP=true")
	}
	return append(env, cfg.AgentEnv()...)
}
