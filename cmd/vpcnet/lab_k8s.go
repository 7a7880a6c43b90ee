package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
)

// newLabK8sCmd groups the Kubernetes lab's own commands: the component build cache.
func newLabK8sCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "k8s",
		Short: "Build and inspect the Kubernetes components the lab cluster runs",
	}
	cmd.AddCommand(newLabK8sBuildCmd(), newLabK8sPathCmd(), newLabK8sNodeRunCmd(), newLabK8sAPIProxyCmd())
	return cmd
}

// newLabK8sNodeRunCmd is a node's runtime process, started by the lab in the node's namespaces.
func newLabK8sNodeRunCmd() *cobra.Command {
	var spec string
	cmd := &cobra.Command{
		Use:    "node-run",
		Short:  "Run a lab node's containerd and kubelet (started by the lab in the node's namespaces)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE:   func(*cobra.Command, []string) error { return k8s.RunNode(spec) },
	}
	cmd.Flags().StringVar(&spec, "spec", "", "the node's node.json")
	return cmd
}

// newLabK8sAPIProxyCmd forwards 127.0.0.1:PORT to the API server in the router namespace.
func newLabK8sAPIProxyCmd() *cobra.Command {
	var ns, target, portFile string
	cmd := &cobra.Command{
		Use:    "apiproxy",
		Short:  "Forward a loopback port of this namespace to the lab's API server (started by lab up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := labContext()
			defer cancel()
			return k8s.RunAPIProxy(ctx, ns, target, portFile)
		},
	}
	cmd.Flags().StringVar(&ns, "netns", "", "the namespace the API server listens in")
	cmd.Flags().StringVar(&target, "target", "", "the API server's address there")
	cmd.Flags().StringVar(&portFile, "port-file", "", "where to write the chosen port")
	return cmd
}

// clusterKubeconfig returns the admin kubeconfig of the lab, or an error saying why there is
// none (no such lab, or a lab without the Kubernetes runtime).
func clusterKubeconfig() (string, error) {
	if err := lab.ValidateName(labName); err != nil {
		return "", usageError{err}
	}
	lp := lab.PathsFor(labName)
	cfg, err := lab.ReadConfig(lp)
	if err != nil {
		return "", fmt.Errorf("lab %s: %w (start it with `vpcnet lab up --name %s --runtime kubernetes`)", labName, lab.ErrNotUp, labName)
	}
	if cfg.Runtime != k8s.Name {
		return "", fmt.Errorf("lab %s runs no Kubernetes (runtime %q): start it with `vpcnet lab up --runtime kubernetes`", labName, cfg.Runtime)
	}
	p := k8s.PathsOf(lp).Kubeconfig()
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("lab %s: its control plane is not up: no %s", labName, p)
	}
	return p, nil
}

func newLabKubeconfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the path of the lab cluster's admin kubeconfig: KUBECONFIG=$(vpcnet lab kubeconfig) kubectl ...",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			p, err := clusterKubeconfig()
			if err != nil {
				return err
			}
			fmt.Println(p)
			return nil
		},
	}
}

func newLabKubectlCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "kubectl -- ARGS...",
		Short: "Run the lab's own kubectl against the lab cluster as its admin",
		Long: `kubectl runs the kubectl built into the lab's cache with the lab's admin kubeconfig, so
` + "`vpcnet lab kubectl -- get pods -o wide`" + ` works like minikube's ` + "`minikube kubectl --`" + `.
Its exit status is kubectl's.`,
		RunE: func(_ *cobra.Command, args []string) error {
			if _, err := clusterKubeconfig(); err != nil {
				return err
			}
			if err := cache.Open("", cache.Default).Check("kubernetes"); err != nil {
				return err
			}
			return runKubectl(args...)
		},
	}
}

func newLabK8sBuildCmd() *cobra.Command {
	var (
		only    []string
		logPath string
	)
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build Kubernetes, containerd, runc, etcd and the lab's tools from pinned module versions, once",
		Long: `build compiles every component of the lab cluster with the go command from the Go module
proxy, at the pinned versions (` + versionsLine(cache.Default) + `),
into a cache shared by every lab and by CI on this machine ($` + cache.EnvRoot + `, default ` + cache.DefaultRoot + `).
A component already built for its pinned version is skipped, so only the first run is slow
(about 15-20 min on 2 idle cores); later runs take a second.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c := cache.Open("", cache.Default)
			if _, err := cache.Select(c.Versions, only); err != nil {
				return usageError{err}
			}
			o := cache.BuildOptions{Only: only, Progress: func(s string) { fmt.Fprintln(os.Stderr, "  ·", s) }}
			if logPath != "" {
				f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				if err != nil {
					return usagef("--log: %v", err)
				}
				defer f.Close()
				o.Log = f
			}
			ctx, cancel := labContext()
			defer cancel()
			start := time.Now()
			if err := c.Build(ctx, o); err != nil {
				return err
			}
			fmt.Printf("lab components ready in %s (%s)\n", c.Dir, time.Since(start).Round(time.Second))
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&only, "only", nil, "build only these components (tools, runc, etcd, containerd, cni-plugins, kubernetes; optional, for lab conformance: k8tools, coredns, agnhost, e2e)")
	cmd.Flags().StringVar(&logPath, "log", "", "append the go command's output to this file")
	return cmd
}

func newLabK8sPathCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "path",
		Short: "Print the build cache directory; exit 1 if a component is not built yet",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c := cache.Open("", cache.Default)
			fmt.Println(c.Dir)
			return c.Check()
		},
	}
}

func versionsLine(v cache.Versions) string {
	return fmt.Sprintf("Kubernetes %s, containerd %s, runc %s, etcd %s", v.Kubernetes, v.Containerd, v.Runc, v.Etcd)
}

// cmdContext is a context that ends on Ctrl-C, for commands that run one child to its end.
func cmdContext() context.Context {
	ctx, _ := labContext()
	return ctx
}

// labIsCluster reports whether --name names a lab that runs Kubernetes: its pods are then
// Kubernetes pods, created, listed, removed and entered through the API.
func labIsCluster() bool { return lab.ValidateName(labName) == nil && k8s.IsCluster(labName) }

func clusterPodRun(name, node string) error {
	ctx, cancel := labContext()
	defer cancel()
	p, err := k8s.RunPod(ctx, labName, name, node, progress)
	if err != nil {
		return err
	}
	fmt.Printf("pod %s running on %s with IP %s\n", p.Name, p.Node, p.IP)
	return nil
}

func clusterPodRm(name string) error {
	ctx, cancel := labContext()
	defer cancel()
	if err := k8s.RemovePod(ctx, labName, name); err != nil {
		return err
	}
	fmt.Printf("pod %s removed\n", name)
	return nil
}

func clusterPodLs() error {
	pods, err := k8s.PodInfos(cmdContext(), labName)
	if err != nil {
		return err
	}
	lab.WritePods(os.Stdout, pods)
	return nil
}

// runKubectl runs the lab's kubectl with args and exits with its status.
func runKubectl(args ...string) error {
	cmd := k8s.Kubectl(cmdContext(), labName, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		os.Exit(ee.ExitCode())
	}
	return err
}

func clusterExec(pod string, args []string) error {
	if _, err := clusterPodsWith(pod); err != nil {
		return err
	}
	return runKubectl(append([]string{"exec", pod, "--"}, args...)...)
}

// clusterPodsWith returns the cluster's pods (one kubectl get) if pod is among them, else
// "lab X has no pod Y", as the bare runtime says, instead of kubectl's raw NotFound when the
// cluster's default namespace has no pod of that name.
func clusterPodsWith(pod string) ([]lab.PodInfo, error) {
	pods, err := k8s.PodInfos(cmdContext(), labName)
	if err != nil {
		return nil, err
	}
	for _, p := range pods {
		if p.Name == pod {
			return pods, nil
		}
	}
	return nil, fmt.Errorf("lab %s has no pod %q", labName, pod)
}

// clusterPing runs vtool's ICMP echo inside the pod; target is a pod name or an address.
func clusterPing(pod, target string, count int) error {
	pods, err := clusterPodsWith(pod)
	if err != nil {
		return err
	}
	if _, err := netip.ParseAddr(target); err != nil {
		found := false
		for _, p := range pods {
			if p.Name == target && p.IP.IsValid() {
				target, found = p.IP.String(), true
			}
		}
		if !found {
			return fmt.Errorf("ping: %q is neither an address nor a running pod of lab %s", target, labName)
		}
	}
	return runKubectl("exec", pod, "--", "/vtool", "ping", "-c", fmt.Sprint(count), target)
}
