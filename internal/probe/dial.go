package probe

import (
	"context"
	"net"
)

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
