package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/vpcnet/vpcnet/internal/lab"
	"github.com/vpcnet/vpcnet/internal/lab/controller"
	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// RefPluginDir is where Debian's containernetworking-plugins puts ptp and host-local.
const RefPluginDir = "/usr/lib/cni"

// cniNet is one CNI network on one node, driven through libcni.
type cniNet struct {
	name   string // what the table calls it
	nodeNS string
	cfg    *libcni.CNIConfig
	list   *libcni.NetworkConfigList
}

func newRuntime(name, nodeNS, cacheDir string, binDirs []string, list *libcni.NetworkConfigList) *cniNet {
	cfg := libcni.NewCNIConfigWithCacheDir(binDirs, cacheDir, controller.NodeExec(nodeNS))
	return &cniNet{name: name, nodeNS: nodeNS, cfg: cfg, list: list}
}

// vpcnetRuntime runs the CNI config list the node's vpcnetd wrote.
func vpcnetRuntime(l *benchLab, node lab.NodeInfo) (*cniNet, error) {
	path := filepath.Join(lab.PathsFor(l.name).Node(node.Index).CNIConfDir(), controller.CNIConfName)
	list, err := libcni.ConfListFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("node %s: CNI config: %w", node.Name, err)
	}
	return newRuntime("vpcnet-cni", node.NS, l.cacheDir(), []string{filepath.Dir(l.cfg.CNIBin)}, list), nil
}

// refNet is the reference network: ptp with host-local, outside the VPC's range so the two
// never meet, with host-local's store in the bench's own directory.
var refNet = netip.MustParsePrefix("172.30.0.0/16")

// refRuntime runs ptp + host-local on the node, invoked exactly as vpcnet-cni is.
func refRuntime(l *benchLab, node lab.NodeInfo) (*cniNet, error) {
	dataDir := filepath.Join(l.dir(), "host-local", fmt.Sprint(node.Index))
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"benchref","plugins":[{"type":"ptp","ipMasq":false,"mtu":9001,
"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}]],"routes":[{"dst":"0.0.0.0/0"}]}}]}`, dataDir, refNet)
	list, err := libcni.ConfListFromBytes([]byte(conf))
	if err != nil {
		return nil, err
	}
	return newRuntime("ptp + host-local", node.NS, l.cacheDir(), []string{RefPluginDir}, list), nil
}

// benchPod is a pod namespace the bench made and wires itself.
type benchPod struct {
	name        string
	ns          string
	containerID string
	ip          netip.Addr
}

// newPod creates the pod's namespace, named inside the lab so the lab's sweep removes it too.
func newPod(labName, name string) (*benchPod, error) {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	p := &benchPod{name: name, ns: lab.PodNS(labName, name), containerID: "bench" + hex.EncodeToString(id)}
	h, err := netnsx.Create(p.ns)
	if err != nil {
		return nil, err
	}
	h.Close()
	return p, nil
}

func (p *benchPod) remove() error { return netnsx.Delete(p.ns) }

func (p *benchPod) rt() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: p.containerID, NetNS: netnsx.Path(p.ns), IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "bench"}, {"K8S_POD_NAME", p.name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.containerID}}}
}

// add runs CNI ADD for the pod and records its address.
func (r *cniNet) add(ctx context.Context, p *benchPod) error {
	res, err := r.cfg.AddNetworkList(ctx, r.list, p.rt())
	if err != nil {
		return err
	}
	cr, err := current.NewResultFromResult(res)
	if err != nil || len(cr.IPs) == 0 {
		return fmt.Errorf("%s: pod %s: result without an address (%v)", r.name, p.name, err)
	}
	p.ip, _ = netip.AddrFromSlice(cr.IPs[0].Address.IP.To4())
	return nil
}

// del runs CNI DEL for the pod.
func (r *cniNet) del(ctx context.Context, p *benchPod) error {
	return r.cfg.DelNetworkList(ctx, r.list, p.rt())
}

// tryAgain reports whether err is CNI's "try again later" (code 11): the agent had no free
// address at that moment.
func tryAgain(err error) bool {
	var e *types.Error
	return errors.As(err, &e) && e.Code == types.ErrTryAgainLater
}

// addRetry runs ADD until it succeeds, retrying every interval on "try again later" as a
// kubelet would (faster, to measure the agent rather than a backoff); it says how many tries
// it took.
func (r *cniNet) addRetry(ctx context.Context, p *benchPod, interval time.Duration) (int, error) {
	for tries := 1; ; tries++ {
		err := r.add(ctx, p)
		if err == nil || !tryAgain(err) {
			return tries, err
		}
		_ = r.del(context.WithoutCancel(ctx), p)
		select {
		case <-ctx.Done():
			return tries, fmt.Errorf("%s: pod %s: %w (last: %v)", r.name, p.name, ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
