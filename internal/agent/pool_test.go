package agent_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/vpcnet/vpcnet/internal/agent"
	"github.com/vpcnet/vpcnet/internal/vpcsim"
)

// m5.large: 3 ENIs of 10 addresses, so 9 pod addresses per ENI.

func TestWarmENITarget(t *testing.T) {
	x := newSim(t, vpcsim.Options{}, "10.0.1.0/24", "m5.large")
	cfg := testConfig(t, x)
	n := startNode(t, x, cfg)
	n.settle("one ENI's worth of free addresses", func(p poolView) bool { return p.total == 9 && p.enis == 1 && p.free == 9 })
	conf, err := os.ReadFile(filepath.Join(cfg.CNIConfDir, cfg.CNIConfName))
	if err != nil {
		t.Fatalf("CNI config not written once ready: %v", err)
	}
	var parsed map[string]any
	if err := json.Unmarshal(conf, &parsed); err != nil || parsed["cniVersion"] != "1.1.0" {
		t.Fatalf("CNI config: %v %s", err, conf)
	}
	for i := range 3 {
		n.mustAdd(fmt.Sprint("pod", i))
	}
	n.settle("a second ENI for three more", func(p poolView) bool { return p.total == 12 && p.enis == 2 && p.free == 9 && p.assigned == 3 })
	for i := range 3 {
		n.del(fmt.Sprint("pod", i))
	}
	n.settle("the second ENI freed after the cooldown", func(p poolView) bool { return p.total == 9 && p.enis == 1 && p.free == 9 })
	if st := n.status(); !st.Ready || st.Reason != "" {
		t.Fatalf("status %v", st)
	}
	_ = agent.ReasonMaxPods
}
