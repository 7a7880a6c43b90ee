package vpcsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/vpcnet/vpcnet/internal/vpcsim/auth"
	"github.com/vpcnet/vpcnet/internal/vpcsim/imds"
)

// InstanceHeader lets a caller of the shared IMDS listener name its instance when its source
// address is not an instance's (vpcsim's own extension, for tools on the host).
const InstanceHeader = "X-Vpcsim-Instance-Id"

type imdsEndpoint struct {
	url string
	srv *http.Server
}

func (e *imdsEndpoint) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if e.srv.Shutdown(ctx) != nil {
		e.srv.Close()
	}
}

// IMDSHandler returns an IMDSv2 handler that answers as the instance identify names: its
// metadata, its role credentials (iam/security-credentials/ROLE), and token responses sent
// with the IP TTL of Options.IMDSHopLimit.
func (s *Server) IMDSHandler(identify func(*http.Request) (instanceID string, err error)) http.Handler {
	return imds.NewHandler(s.metadata, identify).
		WithRole(s.role, func(id string) auth.RoleCredentials { return s.auth.Role(id, time.Now(), s.roleTTL) }).
		WithHopLimit(s.hopLimit)
}

// IdentifyBySource names the calling instance by the request's source address: any private IP
// on one of its attached ENIs, or an address in one of their /28 prefixes (a pod's).
func (s *Server) IdentifyBySource(r *http.Request) (string, error) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return "", imds.ErrUnknownCaller
	}
	if id, ok := s.InstanceByAddr(ap.Addr()); ok {
		return id, nil
	}
	return "", fmt.Errorf("%w: no instance has address %s", imds.ErrUnknownCaller, ap.Addr())
}

// IdentifyBySourceOrHeader is IdentifyBySource, except that a X-Vpcsim-Instance-Id header names
// the instance outright: for tools on the host of `vpcnet sim serve`, not for a lab where
// instances could impersonate each other.
func (s *Server) IdentifyBySourceOrHeader(r *http.Request) (string, error) {
	if id := r.Header.Get(InstanceHeader); id != "" {
		return id, nil
	}
	id, err := s.IdentifyBySource(r)
	if err != nil {
		return "", fmt.Errorf("%w (set header %s to choose one)", err, InstanceHeader)
	}
	return id, nil
}

// IMDSEndpoint returns the URL of a loopback IMDS listener that answers as the instance,
// starting it on first use. It lives until Close.
func (s *Server) IMDSEndpoint(instanceID string) (string, error) {
	if _, err := s.metadata(instanceID); err != nil {
		return "", err
	}
	s.imdsMu.Lock()
	defer s.imdsMu.Unlock()
	if ep := s.imds[instanceID]; ep != nil {
		return ep.url, nil
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return "", errors.New("vpcsim: server closed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("vpcsim: IMDS listener for %s: %w", instanceID, err)
	}
	h := s.IMDSHandler(func(*http.Request) (string, error) { return instanceID, nil })
	ep := &imdsEndpoint{url: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go ep.srv.Serve(ln)
	s.imds[instanceID] = ep
	return ep.url, nil
}

// serveIMDSLookup answers GET /vpcsim/imds/{instance} with the instance's IMDS URL.
func (s *Server) serveIMDSLookup(w http.ResponseWriter, r *http.Request) {
	url, err := s.IMDSEndpoint(r.PathValue("instance"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintln(w, url)
}
