package agent

import "github.com/vpcnet/vpcnet/internal/cloud"

// Kube is the agent's optional Kubernetes side (internal/k8s; Config.Kube, nil without one). The
// agent calls it from its own goroutines, so no method may block.
type Kube interface {
	// Started gives the identity read from IMDS, once the agent has started; the Kubernetes side
	// checks its Node against it before it writes anything.
	Started(id cloud.Identity)
	// Status gives the node's status after every pass of the reconcile loop.
	Status(st Status)
	// AddRefused tells of an ADD answered try-again for want of an address, with the status
	// that says why.
	AddRefused(podNamespace, podName string, st Status)
}

func (a *Agent) kubeStarted() {
	if a.cfg.Kube == nil {
		return
	}
	a.mu.Lock()
	id := a.st.id
	a.mu.Unlock()
	a.cfg.Kube.Started(id)
}

func (a *Agent) kubeStatus() {
	if a.cfg.Kube != nil {
		a.cfg.Kube.Status(a.view().status)
	}
}

func (a *Agent) kubeAddRefused(ns, name string, st Status) {
	if a.cfg.Kube != nil {
		a.cfg.Kube.AddRefused(ns, name, st)
	}
}
