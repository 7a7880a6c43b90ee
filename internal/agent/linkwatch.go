package agent

import (
	"context"
	"strings"

	"github.com/vishvananda/netlink"
)

// watchLinks tells, with host networking, of every link added, changed or removed in the
// agent's namespace whose MAC is one of the node's ENIs' (an ENI attached or detached shows
// there at once, before IMDS is next read). Without host networking, or if netlink refuses, the
// channel never fires and the periodic IMDS read alone notices.
func (a *Agent) watchLinks(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	if !a.cfg.HostNetworking {
		return out
	}
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	go func() { <-ctx.Done(); close(done) }()
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) { a.log.Debug("netlink link events", "err", err) },
	})
	if err != nil {
		a.log.Warn("netlink link events unavailable: ENI changes are noticed from IMDS alone", "err", err)
		return out
	}
	go func() {
		for u := range updates {
			if u.Link == nil || u.Link.Attrs() == nil || !a.isENIMAC(u.Link.Attrs().HardwareAddr.String()) {
				continue
			}
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}()
	return out
}

// isENIMAC reports whether mac is the MAC of one of the node's ENIs as the agent knows them.
func (a *Agent) isENIMAC(mac string) bool {
	if mac == "" {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.st.enis {
		if strings.EqualFold(e.MAC, mac) {
			return true
		}
	}
	return false
}
