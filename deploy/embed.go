package deploy

import _ "embed"

// Manifest is vpcnet.yaml as shipped: what `kubectl apply -f deploy/` applies. The lab applies
// it unchanged under its own overlay (internal/lab/k8s), so both install the same objects.
//
//go:embed vpcnet.yaml
var Manifest []byte

// Names of the objects in Manifest that tools act on.
const (
	Namespace      = "kube-system"
	DaemonSet      = "vpcnet-node"
	AgentContainer = "vpcnetd"
	Image          = "vpcnet.local/vpcnetd:dev"
)
