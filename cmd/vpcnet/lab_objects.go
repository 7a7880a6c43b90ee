package main

// The lab's object commands: nodes, pods, and looking inside them. They are added to the lab
// command in lab.go.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/vpcnet/vpcnet/deploy"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/k8s"
)

// withLab runs fn against the lab's controller with a context that ends on Ctrl-C: for the
// commands that change the lab and report progress while they wait.
func withLab(fn func(context.Context, *lab.Client) error) error {
	c, err := labClient()
	if err != nil {
		return err
	}
	ctx, cancel := labContext()
	defer cancel()
	return fn(ctx, c)
}

// labStatus asks the lab's controller for its status: the commands that only look. On a
// cluster the pods are the Kubernetes pods holding a pod-network address, from the API; if
// the API does not answer, the status says so on stderr and shows the controller's view.
func labStatus() (lab.Status, error) {
	c, err := labClient()
	if err != nil {
		return lab.Status{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil || !labIsCluster() {
		return st, err
	}
	withPods, err := k8s.ClusterStatus(ctx, labName, st)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warning: lab %s: %v; pods are not shown\n", labName, err)
		return st, nil
	}
	return withPods, nil
}

// labNode asks for the lab's status and finds a node in it by name, index or instance ID.
func labNode(key string) (lab.Status, lab.NodeInfo, error) {
	st, err := labStatus()
	if err != nil {
		return lab.Status{}, lab.NodeInfo{}, err
	}
	n, err := lab.FindNode(st, key)
	return st, n, err
}

func newLabNodeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Add or remove nodes"}
	var itype, subnet string
	add := &cobra.Command{
		Use:   "add",
		Short: "Launch a node (instance + namespace + vpcnetd) and wait until it can serve pods",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return withLab(func(ctx context.Context, c *lab.Client) error {
				n, err := c.AddNode(ctx, lab.NodeRequest{InstanceType: itype, Subnet: subnet}, progress)
				if err != nil {
					return err
				}
				n = c.SettledNode(ctx, n) // the pool's first top-up (bounded), as lab up reports it
				fmt.Printf("node %s ready (%s %s, %s, %s)\n", n.Name, n.InstanceID, n.InstanceType, n.NS, lab.PoolLine(n.Agent))
				return nil
			})
		},
	}
	add.Flags().StringVar(&itype, "instance-type", "", "EC2 instance type (default: the lab's)")
	add.Flags().StringVar(&subnet, "subnet", "", "subnet ID or CIDR (default: the lab's first)")
	rm := &cobra.Command{
		Use:   "rm NODE",
		Short: "Remove a node with its pods, agent and instance",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return withLab(func(ctx context.Context, c *lab.Client) error {
				if err := c.RemoveNode(ctx, args[0], progress); err != nil {
					return err
				}
				fmt.Printf("node %s removed\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(add, rm)
	return cmd
}

func newLabPodCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pod", Short: "Run, remove and list pods"}
	var node string
	run := &cobra.Command{
		Use:   "run NAME",
		Short: "Start a pod with an address from the VPC (a Pod through the API on a cluster, a namespace on bare pods)",
		Long: `run starts a pod and waits until it has its address from the VPC subnet.

On a Kubernetes lab (--runtime kubernetes) it creates a Pod through the API (the lab's test image,
pinned to --node or placed by the scheduler); kubelet runs it through containerd and vpcnet-cni.
A pod not running after 2 min fails with its phase and last warning event; the details are one
'vpcnet lab kubectl -- describe pod NAME' away.

On bare pods (--runtime none) it makes a network namespace and wires it with the node's CNI
plugin through libcni, as a container runtime would.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := lab.ValidatePodName(args[0]); err != nil {
				return usageError{err}
			}
			if labIsCluster() {
				return clusterPodRun(args[0], node)
			}
			return withLab(func(ctx context.Context, c *lab.Client) error {
				p, err := c.RunPod(ctx, lab.PodRequest{Name: args[0], Node: node}, progress)
				if err != nil {
					return err
				}
				fmt.Printf("pod %s running on %s with IP %s\n", p.Name, p.Node, p.IP)
				return nil
			})
		},
	}
	run.Flags().StringVar(&node, "node", "", "node name, index or instance ID (default: the ready node with the fewest pods)")
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a pod (on a cluster: delete the Pod, kubelet runs CNI DEL; bare: CNI DEL, then its namespace)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if labIsCluster() {
				return clusterPodRm(args[0])
			}
			c, err := labClient()
			if err != nil {
				return err
			}
			if err := c.RemovePod(context.Background(), args[0], progress); err != nil {
				return err
			}
			fmt.Printf("pod %s removed\n", args[0])
			return nil
		},
	}
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List pods with their IPs and nodes",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if labIsCluster() {
				return clusterPodLs()
			}
			st, err := labStatus()
			if err != nil {
				return err
			}
			lab.WritePods(os.Stdout, st.Pods)
			return nil
		},
	}
	cmd.AddCommand(run, rm, ls)
	return cmd
}

func newLabExecCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "exec POD -- CMD [ARG...]",
		Short: "Run a command inside a pod's network namespace",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return usagef("usage: vpcnet lab exec POD -- CMD [ARG...]")
			}
			if err := lab.ValidateName(labName); err != nil {
				return usageError{err}
			}
			if labIsCluster() {
				return clusterExec(args[0], args[1:])
			}
			code, err := lab.Exec(labName, args[0], args[1:])
			if err != nil {
				return err
			}
			if code != 0 {
				os.Exit(code)
			}
			return nil
		},
	}
}

func newLabPingCmd() *cobra.Command {
	var count int
	cmd := &cobra.Command{
		Use:   "ping POD TARGET",
		Short: "ICMP echo from a pod to another pod or an address (built in: no ping binary needed)",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			if labIsCluster() {
				return clusterPing(args[0], args[1], count)
			}
			st, err := labStatus()
			if err != nil {
				return err
			}
			for i := 0; i < count; i++ {
				dst, rtt, err := lab.Ping(st, args[0], args[1], 2*time.Second)
				if err != nil {
					return err
				}
				fmt.Printf("reply from %s: time=%s\n", dst, rtt.Round(time.Microsecond))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&count, "count", 3, "echo requests to send")
	return cmd
}

func newLabLogsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logs [NODE]",
		Short: "Print the controller's log, or a node's vpcnetd log (the DaemonSet pod's through kubectl logs with --agent daemonset)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := lab.ValidateName(labName); err != nil {
				return usageError{err}
			}
			p := lab.PathsFor(labName)
			file := p.ControllerLog()
			if len(args) == 1 {
				_, n, err := labNode(args[0])
				if err != nil {
					return err
				}
				if cfg, err := lab.ReadConfig(p); err == nil && cfg.DaemonSetAgent() {
					// The agent is the DaemonSet's pod on the node: its log is the container's.
					out, err := k8s.Kubectl(cmdContext(), labName, "get", "pods", "-n", deploy.Namespace, "-l", "k8s-app="+deploy.DaemonSet,
						"--field-selector", "spec.nodeName="+n.Name, "-o", "jsonpath={.items[*].metadata.name}").Output()
					pods := strings.Fields(string(out))
					if err != nil || len(pods) != 1 {
						return fmt.Errorf("node %s: want one %s pod, found %q (%v)", n.Name, deploy.DaemonSet, pods, err)
					}
					return runKubectl("logs", "-n", deploy.Namespace, pods[0])
				}
				file = p.Node(n.Index).AgentLog()
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			_, err = os.Stdout.Write(b)
			return err
		},
	}
}

func newLabDescribeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "describe", Short: "Describe lab objects in detail"}
	cmd.AddCommand(&cobra.Command{
		Use:   "node NODE",
		Short: "Instance type, ENIs, address slots, pods, max pods and what is left on a node",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("describe node wants one NODE: a node's name, index or instance ID (see vpcnet lab status); got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			st, n, err := labNode(args[0])
			if err != nil {
				return err
			}
			lab.WriteDescribeNode(os.Stdout, n, st.Pods)
			return nil
		},
	})
	return cmd
}
