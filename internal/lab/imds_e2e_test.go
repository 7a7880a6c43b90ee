package lab_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vpcnet/vpcnet/internal/lab/fabric"
	"github.com/vpcnet/vpcnet/internal/probe"
)

// Issue 11 fault 9 in the lab: a node gets an IMDSv2 token and its instance role; a pod on it,
// one routing hop further, gets no token (vpcsim's hop limit of 1) and its unsigned EC2 calls
// are refused, so it cannot act as its node toward the cloud.
func TestLabPodCannotActAsNode(t *testing.T) {
	l := newLab(t, "--nodes", "1")
	st := l.status()
	node := st.Nodes[0]
	if id := imdsInstanceID(t, node.NS); id != node.InstanceID {
		t.Fatalf("IMDS in %s says instance %q, want %s", node.NS, id, node.InstanceID)
	}
	l.must("pod", "run", "p", "--node", node.Name)
	pod := l.pod(l.status(), "p")

	base := "http://" + fabric.IMDSAddr.String()
	// The token answer leaves with TTL 1 and dies at the node: the pod's client times out (the
	// node's own request above took the same path to the same listener). Should the agent drop
	// pod traffic to IMDS as well, the request fails sooner; either way there is no token.
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: probe.Dialer(pod.NS)}}
	req, _ := http.NewRequest(http.MethodPut, base+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	if resp, err := hc.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("pod %s got an IMDS token answer: %d %q", pod.Name, resp.StatusCode, b)
	}
	// Without a token, nothing: no role credentials.
	if resp, err := hc.Get(base + "/latest/meta-data/iam/security-credentials/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("pod %s read role credentials without a token: HTTP %d", pod.Name, resp.StatusCode)
		}
	}
	// EC2 refuses an unsigned call from the pod.
	form := url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}}
	resp, err := hc.PostForm("http://"+fabric.EC2Addr.String()+"/", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "<Code>MissingParameter</Code>") {
		t.Fatalf("unsigned EC2 call from pod %s: HTTP %d %s", pod.Name, resp.StatusCode, body)
	}
}
