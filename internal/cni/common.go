package cni

import (
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vpcnet/vpcnet/internal/dataplane"
)

// About is printed when the plugin runs without CNI_COMMAND.
const About = "vpcnet-cni: VPC-native pod networking (an address per pod from the node agent vpcnetd)"

// Funcs are the verbs for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, GC: cmdGC, Status: cmdStatus}
}

// call is one invocation: the parsed config and CNI_ARGS.
type call struct {
	args  *skel.CmdArgs
	conf  *NetConf
	pod   *PodArgs
	store store
}

// What load checks besides the config.
const (
	needIfName = 1 << iota // CNI_IFNAME names the pod's interface (ADD, DEL, CHECK)
	needNetns              // CNI_NETNS is where the plugin acts (ADD, CHECK)
)

// load parses and checks every input of a verb before anything is changed: the config (6, 7),
// the state dir (7), CNI_ARGS (4), and as the verb needs them CNI_IFNAME and CNI_NETNS (4).
func load(args *skel.CmdArgs, need int) (*call, error) {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return nil, err
	}
	if err := checkStateDir(conf.StateDir); err != nil {
		return nil, err
	}
	pod, err := ParseArgs(args.Args)
	if err != nil {
		return nil, err
	}
	if need&needIfName != 0 {
		if err := checkIfName(args.IfName); err != nil {
			return nil, err
		}
	}
	if need&needNetns != 0 {
		if err := checkNetns(args.Netns); err != nil {
			return nil, err
		}
	}
	return &call{args: args, conf: conf, pod: pod, store: newStore(conf.StateDir, conf.Name)}, nil
}

// hostVeth names the attachment's host veth from the network, the container ID and the
// interface (dataplane.ContainerVethName), so that every verb finds it without state and a
// recreated sandbox of the same pod gets another one.
func (c *call) hostVeth() string {
	return dataplane.ContainerVethName(c.conf.VethPrefix, c.conf.Name, c.args.ContainerID, c.args.IfName)
}

// held is the key of this call, as flushPending needs it.
func (c *call) held() *pendingRelease {
	return &pendingRelease{ContainerID: c.args.ContainerID, IfName: c.args.IfName}
}

func (c *call) pod4(rec Record) dataplane.Pod {
	return dataplane.Pod{Netns: rec.Netns, IfName: rec.IfName, HostVeth: rec.HostVeth, VethPrefix: rec.VethPrefix,
		Addr: rec.Addr, MTU: c.conf.MTU, Table: rec.Table, Owner: dataplane.OwnerTag(rec.Network, rec.ContainerID, rec.IfName)}
}

// result is the CNI result of an attachment: both veth ends, the /32 and the default route.
func (c *call) result(rec Record, links dataplane.PodLinks) *current.Result {
	gw := dataplane.Gateway.AsSlice()
	return &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: rec.HostVeth, Mac: links.HostMAC, Mtu: c.conf.MTU},
			{Name: rec.IfName, Mac: links.PodMAC, Mtu: c.conf.MTU, Sandbox: rec.Netns},
		},
		IPs: []*current.IPConfig{{
			Interface: current.Int(1),
			Address:   net.IPNet{IP: rec.Addr.AsSlice(), Mask: net.CIDRMask(32, 32)},
			Gateway:   gw,
		}},
		Routes: []*types.Route{{Dst: net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, GW: gw}},
		DNS:    c.conf.DNS,
	}
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, types.NewError(types.ErrInternal, "node agent returned address "+s+", not IPv4", "")
	}
	return a, nil
}

// ioError is a state dir failure (5).
func ioError(err error) *types.Error { return types.NewError(types.ErrIOFailure, err.Error(), "") }
