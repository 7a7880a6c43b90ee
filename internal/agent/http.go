package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vpcnet/vpcnet/internal/ipam"
)

// serveHTTP serves metrics and introspection on addr, which must be a loopback address.
func (a *Agent) serveHTTP(addr string) (stop func(), err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("VPCNET_METRICS_ADDR %q: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); (err != nil && host != "localhost") || (err == nil && !ip.IsLoopback()) {
		return nil, fmt.Errorf("VPCNET_METRICS_ADDR %q: introspection is served on loopback only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	a.log.Info("introspection", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// Handler serves /metrics, /healthz, /v1/status, /v1/enis, /v1/pods and /v1/config.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		st := a.view().status
		if st.Reason == ReasonStarting || ((st.Reason == ReasonCloudUnreachable || st.Reason == ReasonCloudUnauthorized) && !a.started()) {
			http.Error(w, st.Reason+": "+st.Message, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.view().status) })
	mux.HandleFunc("GET /v1/enis", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.enisView()) })
	mux.HandleFunc("GET /v1/pods", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.store.List()) })
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.configView()) })
	return mux
}

func (a *Agent) started() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.started
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// ENIView is one ENI in /v1/enis.
type ENIView struct {
	ID          string            `json:"id"`
	MAC         string            `json:"mac"`
	DeviceIndex int               `json:"deviceIndex"`
	PrimaryIP   netip.Addr        `json:"primaryIP"`
	Unmanaged   bool              `json:"unmanaged,omitempty"`
	Busy        bool              `json:"busy,omitempty"`
	Prefixes    []netip.Prefix    `json:"prefixes,omitempty"`
	Addresses   map[string]string `json:"addresses"` // address -> assigned, free, cooldown, leaving, no_manage or setting-up
}

func (a *Agent) enisView() []ENIView {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stateLocked(time.Now())
	usable := map[string]bool{}
	for _, e := range a.managedLocked() {
		usable[e.ID] = true
	}
	var out []ENIView
	for _, e := range a.st.enis {
		v := ENIView{ID: e.ID, MAC: e.MAC, DeviceIndex: e.DeviceIndex, PrimaryIP: e.PrimaryIP, Unmanaged: e.Unmanaged, Busy: a.st.pending.Busy[e.ID], Prefixes: e.Prefixes, Addresses: map[string]string{}}
		for _, ip := range (ipam.ENI{IPs: e.IPs, Prefixes: e.Prefixes}).Addrs() {
			state := "free"
			switch {
			case e.Unmanaged:
				state = "no_manage" // never handed out: not ours to use
			case !usable[e.ID]:
				state = "setting-up" // handed out once the ENI's device is set up
			case a.st.leaving[ip]:
				state = "leaving"
			case s.Assigned[ip]:
				state = "assigned"
			case s.InCooldown(ip):
				state = "cooldown"
			}
			v.Addresses[ip.String()] = state
		}
		out = append(out, v)
	}
	return out
}

func (a *Agent) configView() any {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := ipam.CapacityOf(a.stateLocked(time.Now()))
	return map[string]any{
		"settings":   a.cfg,
		"instance":   a.st.id,
		"limits":     a.st.limits,
		"maxPods":    c.Pods,
		"capacity":   c,
		"lastPlan":   a.st.lastPlan.Reason,
		"subnetFree": a.st.subnet.free,
	}
}
