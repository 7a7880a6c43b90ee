package probe

import (
	"context"
	"net"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vpcnet/vpcnet/internal/netnsx"
)

// In runs f with the calling thread in the named namespace.
func In(nsName string, f func() error) error {
	h, err := ns.GetNS(netnsx.Path(nsName))
	if err != nil {
		return err
	}
	defer h.Close()
	return h.Do(func(ns.NetNS) error { return f() })
}

// Dialer returns a DialContext that opens its connections inside the named namespace, e.g.
// for an http.Transport that talks to a node's localhost.
func Dialer(nsName string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := In(nsName, func() error {
			var err error
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}
