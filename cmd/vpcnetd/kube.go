package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/k8s"
)

// kubeEnv is what decides whether vpcnetd has a Kubernetes side (internal/k8s): NODE_NAME (the
// DaemonSet sets it from the downward API) and KUBERNETES_SERVICE_HOST (kubelet sets it in every
// pod). With either unset the agent runs without one, as outside a cluster.
type kubeEnv struct{ node, host string }

// kubeSettings reads and checks the environment; an invalid NODE_NAME is a configuration error.
func kubeSettings(environ []string) (kubeEnv, error) {
	var e kubeEnv
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "NODE_NAME":
			e.node = v
		case "KUBERNETES_SERVICE_HOST":
			e.host = v
		}
	}
	if e.node != "" {
		if err := k8s.CheckNodeName(e.node); err != nil {
			return e, err
		}
	}
	return e, nil
}

// startKube starts the Kubernetes side on ctx and returns it, or nil when not in a cluster or
// when the in-cluster client cannot be made (logged: pod networking never waits on the API server).
func startKube(ctx context.Context, e kubeEnv, gcGrace time.Duration, log *slog.Logger) agent.Kube {
	if e.node == "" || e.host == "" {
		log.Info("no Kubernetes side: NODE_NAME or KUBERNETES_SERVICE_HOST unset")
		return nil
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		log.Error("no Kubernetes side: in-cluster config", "err", err)
		return nil
	}
	rc.UserAgent = "vpcnetd"
	cs, err := k8s.NewRESTClient(rc)
	if err != nil {
		log.Error("no Kubernetes side: client", "err", err)
		return nil
	}
	c, err := k8s.New(cs, e.node, log, k8s.WithPodGC(gcGrace))
	if err != nil {
		log.Error("no Kubernetes side", "err", err)
		return nil
	}
	go c.Run(ctx)
	log.Info("Kubernetes side started", "node", e.node, "apiserver", rc.Host, "podGCGrace", gcGrace)
	return c
}
