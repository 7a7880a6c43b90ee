package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"k8s.io/client-go/rest"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/k8s"
)

// kubeEnv is what decides whether vpcnetd has a Kubernetes side (internal/k8s): NODE_NAME (the
// DaemonSet sets it from the downward API) and KUBERNETES_SERVICE_HOST (kubelet sets it in every
// pod). With either unset the agent runs without one, as outside a cluster.
type kubeEnv struct{ node, host string }

const (
	envNodeName    = "NODE_NAME"
	envServiceHost = "KUBERNETES_SERVICE_HOST"
	envServicePort = "KUBERNETES_SERVICE_PORT" // read by client-go's rest.InClusterConfig
)

// kubeVariables documents the variables of the Kubernetes side for --help.
var kubeVariables = []envDoc{
	{envNodeName, "unset", "this node's name in the cluster (the DaemonSet sets it from spec.nodeName): up to 253 lowercase letters, digits, - and ., each part between dots starting and ending with a letter or digit; with " + envServiceHost + " set it starts the Kubernetes side (node annotations, events, pod GC)"},
	{envServiceHost, "unset", "the API server's address, set by kubelet in every pod; unset: no Kubernetes side"},
	{envServicePort, "unset", "the API server's port, set by kubelet; read by client-go's in-cluster config with the service account's token and CA"},
}

// kubeSettings reads and checks the environment (getenv); an invalid NODE_NAME is a
// configuration error, one line in the form of the other settings'.
func kubeSettings(getenv func(string) string) (kubeEnv, error) {
	e := kubeEnv{node: getenv(envNodeName), host: getenv(envServiceHost)}
	if e.node != "" {
		if err := k8s.CheckNodeName(e.node); err != nil {
			return e, fmt.Errorf("%s: %s is not a node name (at most 253 lowercase letters, digits, - and .; each part between dots starts and ends with a letter or digit)", envNodeName, quoteShort(e.node))
		}
	}
	return e, nil
}

// quoteShort quotes v, cut to its first 40 bytes (and its length given) when longer than 48, so
// an error stays one short line.
func quoteShort(v string) string {
	if len(v) <= 48 {
		return strconv.Quote(v)
	}
	return fmt.Sprintf("%q... (%d bytes)", v[:40], len(v))
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
