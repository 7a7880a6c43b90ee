package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/clusterdemo"
	"github.com/vpcnet/vpcnet/internal/lab/controller"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
	"github.com/vpcnet/vpcnet/internal/lab/k8s/cache"
)

func init() { subcommands = append(subcommands, newLabCmd) }

// labName is the --name flag shared by every lab command.
var labName string

func newLabCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run a VPC-native cluster on this machine: VPC, nodes, agents and pods in network namespaces",
		Long: `vpcnet lab runs the whole system on one Linux machine (root needed): vpcsim emulates the VPC,
a router network namespace is its fabric, and every node is a network namespace with its own
vpcnetd. Nothing is added to the host's own network namespace. What runs pods (--runtime):

  kubernetes  a real cluster (Kubernetes ` + cache.Default.Kubernetes + `): the control plane in the router
              namespace, containerd and kubelet on every node. kubelet runs pods through
              vpcnet-cni; use kubectl (vpcnet lab kubectl -- get pods -o wide). The agent is
              the lab's supervised vpcnetd, or deploy/'s DaemonSet with --agent daemonset.
              Its components are built once by 'vpcnet lab k8s build' and cached.
  none        bare pods: each pod is a namespace wired by vpcnet-cni through libcni, as a
              container runtime would; no Kubernetes and no build (what the benchmarks use).

'lab demo' runs on kubernetes by default, 'lab up' on none.

Start with:  vpcnet lab demo                   # the EKS kubectl walk-through, every step verified
             vpcnet lab demo --runtime none    # the same story on bare namespaces`,
	}
	cmd.PersistentFlags().StringVar(&labName, "name", lab.DefaultName, "which lab (state in "+lab.Root()+"/NAME)")
	cmd.AddCommand(newLabConformanceCmd())
	cmd.AddCommand(newLabUpCmd(), newLabStatusCmd(), newLabNodeCmd(), newLabPodCmd(), newLabExecCmd(),
		newLabDescribeCmd(), newLabPingCmd(), newLabLogsCmd(), newLabDownCmd(), newLabDemoCmd(), newLabControllerCmd(),
		newLabBenchCmd(), newLabK8sCmd(), newLabKubectlCmd(), newLabKubeconfigCmd())
	return cmd
}

// progress prints a long step's progress on stderr.
func progress(s string) { fmt.Fprintln(os.Stderr, "  ·", s) }

func labClient() (*lab.Client, error) {
	if err := lab.ValidateName(labName); err != nil {
		return nil, usageError{err}
	}
	return lab.NewClient(labName)
}

func newLabUpCmd() *cobra.Command {
	var (
		nodes   int
		itype   string
		vpcCIDR string
		subnets []string
		latency []string
		runtime string
		kube    bool
		mode    string
		agent   = map[string]*string{}
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create the VPC, its subnets and the nodes, each running vpcnetd",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := lab.DefaultConfig(labName)
			cfg.InstanceType = itype
			cfg.Runtime = runtime
			if kube {
				cfg.Runtime = "kubernetes"
			}
			cfg.AgentMode = mode
			var err error
			if cfg.VPCCIDR, err = netip.ParsePrefix(vpcCIDR); err != nil {
				return usagef("--vpc-cidr %q: %v", vpcCIDR, err)
			}
			if len(subnets) > 0 {
				cfg.Subnets = nil
				for _, s := range subnets {
					p, err := netip.ParsePrefix(s)
					if err != nil {
						return usagef("--subnet %q: %v", s, err)
					}
					cfg.Subnets = append(cfg.Subnets, p)
				}
			}
			for _, l := range latency {
				action, d, err := lab.ParseLatency(l)
				if err != nil {
					return usageError{err}
				}
				if cfg.EC2Latency == nil {
					cfg.EC2Latency = map[string]lab.Duration{}
				}
				cfg.EC2Latency[action] = d
			}
			cfg.Agent = map[string]string{}
			for k, v := range agent {
				if cmd.Flags().Changed(lab.FlagName(k)) {
					cfg.Agent[k] = *v
				}
			}
			if nodes < 0 {
				return usagef("--nodes must be 0 or more")
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			ctx, cancel := labContext()
			defer cancel()
			c, err := lab.Up(ctx, lab.UpOptions{Config: cfg, Nodes: nodes, Progress: progress})
			var bad *lab.SettingsError
			if errors.As(err, &bad) {
				return usageError{bad} // vpcnetd's own line; nothing was created
			}
			if sig, ok := signalCause(ctx); ok && err != nil {
				// The signal is the cause, not the step it cut short ("context canceled").
				err = sig
				if stdioBroken() {
					// Nobody reads what vpcnet says (`lab up 2>&1 | head -1`): leave nothing.
					if derr := lab.Down(context.Background(), labName, func(string) {}); derr != nil {
						return fmt.Errorf("%v; removing the partly made lab %s: %w", sig, labName, derr)
					}
					return fmt.Errorf("%v; the partly made lab %s was removed", sig, labName)
				}
			}
			if err != nil {
				if c != nil || lab.Exists(labName) {
					return fmt.Errorf("%w; the lab is partly up: see `vpcnet lab status --name %s`, or remove it with `vpcnet lab down --name %s`", err, labName, labName)
				}
				return err
			}
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			lab.WriteStatus(&buf, st)
			if _, err := os.Stdout.Write(buf.Bytes()); err != nil {
				return fmt.Errorf("lab %s is up, but its status was not written: %w", labName, err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&nodes, "nodes", 2, "nodes to start")
	f.StringVar(&itype, "instance-type", "t3.medium", "EC2 instance type of the nodes")
	f.StringVar(&vpcCIDR, "vpc-cidr", "10.10.0.0/16", "the VPC's CIDR block")
	f.StringSliceVar(&subnets, "subnet", nil, "a subnet CIDR inside the VPC, repeatable; nodes go to the first (default 10.10.1.0/24)")
	f.StringVar(&runtime, "runtime", lab.RuntimeNone, "what runs pods: none (bare namespaces via libcni, for benchmarks) or kubernetes (a real cluster: control plane, containerd and kubelet per node)")
	f.BoolVar(&kube, "kubernetes", false, "same as --runtime kubernetes")
	f.StringVar(&mode, "agent", lab.AgentSupervised, "who runs each node's vpcnetd: supervised (the lab's own process) or daemonset (deploy/'s DaemonSet plus the lab's overlay; needs --runtime kubernetes)")
	f.StringSliceVar(&latency, "ec2-latency", nil, "delay an EC2 action in vpcsim, ACTION=DURATION, repeatable (e.g. AttachNetworkInterface=1s)")
	for _, k := range lab.AgentSettings {
		agent[k] = f.String(lab.FlagName(k), "", "vpcnetd setting "+k)
	}
	return cmd
}

func newLabStatusCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the VPC, subnets (used/free), nodes, ENIs, addresses and pods",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if format != "text" && format != "json" {
				return usagef("--format must be text or json")
			}
			st, err := labStatus()
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			lab.WriteStatus(os.Stdout, st)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}

func newLabDownCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove every namespace, process and file the lab made",
		Long: `down removes every namespace, process and file of the lab named by --name, also of a lab that
'lab up' made only partly. It fails (exit 1) when no such lab exists, and names the labs that do.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := lab.ValidateName(labName); err != nil {
				return usageError{err}
			}
			if !lab.Exists(labName) {
				return noLabError(labName)
			}
			if err := lab.Down(context.Background(), labName, progress); err != nil {
				return err
			}
			fmt.Printf("lab %s is down\n", labName)
			return nil
		},
	}
}

// noLabError says that the named lab does not exist and which labs do.
func noLabError(name string) error {
	labs := lab.Labs()
	if len(labs) == 0 {
		return fmt.Errorf("no lab named %s (no lab exists on this machine)", name)
	}
	return fmt.Errorf("no lab named %s (labs on this machine: %s)", name, strings.Join(labs, ", "))
}

func newLabDemoCmd() *cobra.Command {
	var (
		keep    bool
		runtime string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the EKS + VPC CNI walk-through with kubectl on a real cluster and verify every step",
		Long: `demo runs the EKS + VPC CNI walk-through on a lab cluster (Kubernetes ` + cache.Default.Kubernetes + `, containerd, kubelet per
node) and verifies each step: the VPC and subnets in vpcsim; the cluster with 2 nodes, NotReady
until a CNI is installed; ` + "`kubectl apply`" + ` of vpcnet's manifest (deploy/vpcnet.yaml, the DaemonSet
mode of ` + "`lab up --agent daemonset`" + `) and the agent Ready on every node; a Deployment whose pods get
distinct VPC subnet addresses; pod-to-pod traffic across nodes through kubectl exec with no
tunnel device; ` + "`kubectl describe pod`" + ` showing the address; a new node whose pods get VPC
addresses; a full /28 subnet leaving the next pods ContainerCreating with the reason in their
events. It prints each kubectl command with its output, then a table of the steps (what each
did, whether it was verified, how long it took, what it observed), and tears the cluster down. Exit status 0 only if every step was verified.

The first run builds the cluster's components into a cache (see ` + "`vpcnet lab k8s build`" + `); later
runs reuse it. --runtime none runs the older walk-through on bare network namespaces (no
Kubernetes, no build: pods wired through libcni as a runtime would).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := lab.ValidateName(labName); err != nil {
				return usageError{err}
			}
			ctx, cancel := labContext()
			defer cancel()
			var ok bool
			switch runtime {
			case k8s.Name:
				ok = clusterdemo.Run(ctx, clusterdemo.Options{Name: labName, Keep: keep, Out: os.Stdout, Progress: progress})
			case lab.RuntimeNone:
				var err error
				if ok, err = lab.Demo(ctx, os.Stdout, lab.DemoOptions{Name: labName, Keep: keep, Progress: progress}); err != nil {
					return err
				}
			default:
				return usagef("--runtime %q: want %s or %s", runtime, k8s.Name, lab.RuntimeNone)
			}
			if !ok {
				return errors.New("demo: not every step was verified")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the lab up at the end (remove it later with 'vpcnet lab down')")
	cmd.Flags().StringVar(&runtime, "runtime", k8s.Name, "kubernetes (the kubectl walk-through on a real cluster) or none (bare namespaces, no Kubernetes)")
	return cmd
}

func newLabControllerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "controller",
		Short:  "Run a lab's controller (started by `lab up` inside the router namespace)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, cancel := labContext()
			defer cancel()
			return controller.Run(ctx, labName)
		},
	}
}
