package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/vpcnet/vpcnet/internal/probe"
)

// agentMetrics fetches vpcnetd's /metrics from its default loopback address in the namespace.
func agentMetrics(ctx context.Context, nsName string) ([]Metric, error) {
	b, err := agentGet(ctx, nsName, "/metrics")
	if err != nil {
		return nil, err
	}
	return ParseMetrics(string(b)), nil
}

// agentGet fetches one path of vpcnetd's introspection server in the namespace.
func agentGet(ctx context.Context, nsName, path string) ([]byte, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: probe.Dialer(nsName), DisableKeepAlives: true}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:61678"+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("vpcnetd in %s: %w", nsName, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("vpcnetd in %s: %s: %s", nsName, path, resp.Status)
	}
	return b, err
}
