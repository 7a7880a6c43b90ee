package cni_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/vpcnet/vpcnet/internal/agentapi"
)

// BenchmarkAddDel measures one ADD followed by one DEL through libcni, for vpcnet-cni (address
// from the real agent over gRPC) and for the reference ptp + host-local plugins, interleaved in the
// same run on the same node, and reports both and their ratio.
//
//	go test -run '^$' -bench AddDel -benchtime 200x ./internal/cni
func BenchmarkAddDel(b *testing.B) {
	needRef(b, "ptp", "host-local")
	c := newCluster(b, clusterOpts{})
	ours := c.conflist(b, "1.0.0")
	refConf, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "ref", "plugins": []any{map[string]any{
		"type": "ptp", "mtu": 9001, "ipMasq": false,
		"ipam": map[string]any{"type": "host-local", "ranges": [][]map[string]string{{{"subnet": "10.20.0.0/16"}}},
			"dataDir": filepath.Join(b.TempDir(), "host-local")},
	}}})
	ref, err := libcni.ConfListFromBytes(refConf)
	if err != nil {
		b.Fatal(err)
	}
	p := newPod(b, "bench")
	cycle := func(list *libcni.NetworkConfigList, i int) (add, del time.Duration) {
		rt := *p.rt
		rt.ContainerID = fmt.Sprintf("bench-%s-%d", list.Name, i)
		start := time.Now()
		if _, err := c.cni.AddNetworkList(bg, list, &rt); err != nil {
			b.Fatalf("ADD %s: %v", list.Name, err)
		}
		mid := time.Now()
		if err := c.cni.DelNetworkList(bg, list, &rt); err != nil {
			b.Fatalf("DEL %s: %v", list.Name, err)
		}
		return mid.Sub(start), time.Since(mid)
	}
	cycle(ours, -1) // warm both paths (page cache, agent connection)
	cycle(ref, -1)
	var oursAdd, oursDel, refAdd, refDel time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, d := cycle(ours, i)
		oursAdd, oursDel = oursAdd+a, oursDel+d
		a, d = cycle(ref, i)
		refAdd, refDel = refAdd+a, refDel+d
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(ms(oursAdd+oursDel), "vpcnet-ms/op")
	b.ReportMetric(ms(oursAdd), "vpcnet-add-ms/op")
	b.ReportMetric(ms(oursDel), "vpcnet-del-ms/op")
	b.ReportMetric(ms(refAdd+refDel), "ptp-ms/op")
	b.ReportMetric(ms(refAdd), "ptp-add-ms/op")
	b.ReportMetric(ms(refDel), "ptp-del-ms/op")
	b.ReportMetric(float64(oursAdd+oursDel)/float64(refAdd+refDel), "ratio")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAgentAddDel is the agent's share of an ADD+DEL: one Add and one Del over gRPC.
func BenchmarkAgentAddDel(b *testing.B) {
	c := newCluster(b, clusterOpts{})
	conn, err := agentapi.Dial(c.socket)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	api := agentapi.NewAgentClient(conn)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		key := &agentapi.Key{Network: "vpcnet", ContainerId: fmt.Sprintf("agent-bench-%d", i), Ifname: "eth0"}
		if _, err := api.Add(bg, &agentapi.AddRequest{Version: agentapi.Version, Key: key, Netns: "/x"}); err != nil {
			b.Fatal(err)
		}
		if _, err := api.Del(bg, &agentapi.DelRequest{Version: agentapi.Version, Key: key}); err != nil {
			b.Fatal(err)
		}
	}
}
