package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/controller"
)

func init() { subcommands = append(subcommands, newLabCmd) }

// labName is the --name flag shared by every lab command.
var labName string

func newLabCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run a VPC-native cluster on this machine: VPC, nodes, agents and pods in network namespaces",
		Long: `vpcnet lab runs the whole system on one Linux machine (root needed): vpcsim emulates the VPC,
a router network namespace is its fabric, every node is a namespace running its own vpcnetd,
and every pod is a namespace wired by vpcnet-cni through libcni, as a container runtime does.
Nothing is added to the host's own network namespace.

Start with:  vpcnet lab demo`,
	}
	cmd.PersistentFlags().StringVar(&labName, "name", lab.DefaultName, "which lab (state in "+lab.Root()+"/NAME)")
	cmd.AddCommand(newLabUpCmd(), newLabStatusCmd(), newLabNodeCmd(), newLabPodCmd(), newLabExecCmd(),
		newLabDescribeCmd(), newLabPingCmd(), newLabLogsCmd(), newLabDownCmd(), newLabDemoCmd(), newLabControllerCmd())
	return cmd
}

// progress prints a long step's progress on stderr.
func progress(s string) { fmt.Fprintln(os.Stderr, "  ·", s) }

// labContext ends on Ctrl-C.
func labContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

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
		agent   = map[string]*string{}
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create the VPC, its subnets and the nodes, each running vpcnetd",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := lab.DefaultConfig(labName)
			cfg.InstanceType = itype
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
			if err != nil {
				if c != nil {
					return fmt.Errorf("%w; the lab is partly up: see `vpcnet lab status --name %s`, or remove it with `vpcnet lab down --name %s`", err, labName, labName)
				}
				return err
			}
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			lab.WriteStatus(os.Stdout, st)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&nodes, "nodes", 2, "nodes to start")
	f.StringVar(&itype, "instance-type", "t3.medium", "EC2 instance type of the nodes")
	f.StringVar(&vpcCIDR, "vpc-cidr", "10.10.0.0/16", "the VPC's CIDR block")
	f.StringSliceVar(&subnets, "subnet", nil, "a subnet CIDR inside the VPC, repeatable; nodes go to the first (default 10.10.1.0/24)")
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
			c, err := labClient()
			if err != nil {
				return err
			}
			st, err := c.Status(context.Background())
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

func newLabNodeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Add or remove nodes"}
	var itype, subnet string
	add := &cobra.Command{
		Use:   "add",
		Short: "Launch a node (instance + namespace + vpcnetd) and wait until it can serve pods",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			c, err := labClient()
			if err != nil {
				return err
			}
			ctx, cancel := labContext()
			defer cancel()
			n, err := c.AddNode(ctx, lab.NodeRequest{InstanceType: itype, Subnet: subnet}, progress)
			if err != nil {
				return err
			}
			fmt.Printf("node %s ready (%s %s, %s, %d address(es) free)\n", n.Name, n.InstanceID, n.InstanceType, n.NS, n.Agent.Free)
			return nil
		},
	}
	add.Flags().StringVar(&itype, "instance-type", "", "EC2 instance type (default: the lab's)")
	add.Flags().StringVar(&subnet, "subnet", "", "subnet ID or CIDR (default: the lab's first)")
	rm := &cobra.Command{
		Use:   "rm NODE",
		Short: "Remove a node with its pods, agent and instance",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := labClient()
			if err != nil {
				return err
			}
			ctx, cancel := labContext()
			defer cancel()
			if err := c.RemoveNode(ctx, args[0], progress); err != nil {
				return err
			}
			fmt.Printf("node %s removed\n", args[0])
			return nil
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
		Short: "Start a pod: a namespace wired by the node's CNI plugin, with an address from the VPC",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := lab.ValidatePodName(args[0]); err != nil {
				return usageError{err}
			}
			c, err := labClient()
			if err != nil {
				return err
			}
			ctx, cancel := labContext()
			defer cancel()
			p, err := c.RunPod(ctx, lab.PodRequest{Name: args[0], Node: node}, progress)
			if err != nil {
				return err
			}
			fmt.Printf("pod %s running on %s with IP %s\n", p.Name, p.Node, p.IP)
			return nil
		},
	}
	run.Flags().StringVar(&node, "node", "", "node name, index or instance ID (default: the ready node with the fewest pods)")
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a pod (CNI DEL, then its namespace)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
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
			c, err := labClient()
			if err != nil {
				return err
			}
			st, err := c.Status(context.Background())
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
			c, err := labClient()
			if err != nil {
				return err
			}
			st, err := c.Status(context.Background())
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
		Short: "Print the controller's log, or a node's vpcnetd log",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := lab.ValidateName(labName); err != nil {
				return usageError{err}
			}
			p := lab.PathsFor(labName)
			file := p.ControllerLog()
			if len(args) == 1 {
				c, err := labClient()
				if err != nil {
					return err
				}
				st, err := c.Status(context.Background())
				if err != nil {
					return err
				}
				n, err := lab.FindNode(st, args[0])
				if err != nil {
					return err
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
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			c, err := labClient()
			if err != nil {
				return err
			}
			st, err := c.Status(context.Background())
			if err != nil {
				return err
			}
			n, err := lab.FindNode(st, args[0])
			if err != nil {
				return err
			}
			lab.WriteDescribeNode(os.Stdout, n, st.Pods)
			return nil
		},
	})
	return cmd
}

func newLabDownCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove every namespace, process and file the lab made",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := lab.ValidateName(labName); err != nil {
				return usageError{err}
			}
			if err := lab.Down(context.Background(), labName, progress); err != nil {
				return err
			}
			fmt.Printf("lab %s is down\n", labName)
			return nil
		},
	}
}

func newLabDemoCmd() *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the EKS + VPC CNI walk-through for real and verify every step",
		Long: `demo builds a lab, runs the seed's process table step by step (VPC and subnets, nodes, the
agent on every node, ENIs and addresses, pods with VPC addresses, pod-to-pod traffic across nodes
with no tunnel, a node added, a subnet run dry), verifies each step against what it observes,
prints the table with the observed values, and tears the lab down. Exit status 0 only if every
step was verified.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := lab.ValidateName(labName); err != nil {
				return usageError{err}
			}
			ctx, cancel := labContext()
			defer cancel()
			ok, err := lab.Demo(ctx, os.Stdout, lab.DemoOptions{Name: labName, Keep: keep, Progress: progress})
			if err != nil {
				return err
			}
			if !ok {
				return errors.New("demo: not every step was verified")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the lab up at the end (then `vpcnet lab down`)")
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
