// Package imds serves the EC2 instance metadata service (IMDSv2) for vpcsim: the token flow
// and the metadata paths the node agent reads, formatted as the real service formats them.
// It answers as the calling instance, read from the model at request time, so it tracks EC2
// state at once.
package imds

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vpcnet/vpcnet/internal/vpcsim/auth"
	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// Header names of the IMDSv2 token flow.
const (
	TokenHeader    = "X-aws-ec2-metadata-token"
	TTLHeader      = "X-aws-ec2-metadata-token-ttl-seconds"
	maxTTL         = 21600
	maxTokens      = 100000
	tokenPath      = "/latest/api/token"
	metaDataPrefix = "/latest/meta-data/"
	identityPath   = "/latest/dynamic/instance-identity/document"
)

// Source gives the metadata of an instance; it returns an error when the instance is unknown.
type Source func(instanceID string) (*model.Metadata, error)

// Identify names the instance a request comes from.
type Identify func(r *http.Request) (instanceID string, err error)

// RoleSource gives an instance's role credentials now.
type RoleSource func(instanceID string) auth.RoleCredentials

// Handler is an IMDSv2 endpoint.
type Handler struct {
	src      Source
	identify Identify
	now      func() time.Time
	role     string
	roleSrc  RoleSource
	hopLimit int

	mu     sync.Mutex
	tokens map[string]token
}

type token struct {
	instance string
	expires  time.Time
}

// NewHandler returns an IMDS handler.
func NewHandler(src Source, identify Identify) *Handler {
	return &Handler{src: src, identify: identify, now: time.Now, tokens: map[string]token{}}
}

// WithRole makes every instance carry the named IAM role: meta-data/iam/info and
// iam/security-credentials/NAME serve the credentials src gives. It returns h.
func (h *Handler) WithRole(name string, src RoleSource) *Handler {
	h.role, h.roleSrc = name, src
	return h
}

// WithHopLimit sets the IP TTL of token responses (EC2's HttpPutResponseHopLimit, 1..64):
// a caller further than that many routing hops never sees its token. 0 leaves the system's
// default TTL. It returns h.
func (h *Handler) WithHopLimit(n int) *Handler {
	h.hopLimit = n
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "EC2ws")
	instanceID, err := h.identify(r)
	if err != nil {
		http.Error(w, "Forbidden: "+err.Error(), http.StatusForbidden)
		return
	}
	if r.URL.Path == tokenPath {
		h.serveToken(w, r, instanceID)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if !h.validToken(r.Header.Get(TokenHeader), instanceID) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	md, err := h.src(instanceID)
	if err != nil || md.State == model.InstanceTerminated {
		http.NotFound(w, r)
		return
	}
	body, ok := render(md, h.roleLeaves(md.InstanceID), r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	if strings.HasSuffix(r.URL.Path, "/document") {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write([]byte(body))
	}
}

func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request, instanceID string) {
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", "PUT")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	raw := r.Header.Get(TTLHeader)
	ttl, err := strconv.Atoi(raw)
	if raw == "" || err != nil || ttl < 1 || ttl > maxTTL {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	b := make([]byte, 42)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := h.now()
	h.mu.Lock()
	if len(h.tokens) >= maxTokens {
		for k, t := range h.tokens {
			if now.After(t.expires) {
				delete(h.tokens, k)
			}
		}
		if len(h.tokens) >= maxTokens {
			h.tokens = map[string]token{}
		}
	}
	h.tokens[tok] = token{instance: instanceID, expires: now.Add(time.Duration(ttl) * time.Second)}
	h.mu.Unlock()
	if h.hopLimit > 0 {
		h.writeLimited(w, r, tok, ttl)
		return
	}
	w.Header().Set(TTLHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(tok))
}

// writeLimited sends the token response with the connection's IP TTL set to the hop limit, as
// EC2 does: each router on the way back decrements it, so a caller behind more than hopLimit
// hops never gets the answer. The connection is taken over from net/http to set the TTL and
// closed after the answer.
func (h *Handler) writeLimited(w http.ResponseWriter, r *http.Request, tok string, ttl int) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if errors.Is(err, http.ErrNotSupported) {
		// Not a socket of net/http's HTTP/1 server (an in-process recorder): no IP to limit.
		w.Header().Set(TTLHeader, strconv.Itoa(ttl))
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(tok))
		return
	}
	if err != nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	if err := setTTL(conn, h.hopLimit); err != nil {
		return // never answer without the limit
	}
	resp := &http.Response{StatusCode: http.StatusOK, ProtoMajor: 1, ProtoMinor: 1, Request: r, Close: true,
		Header:        http.Header{TTLHeader: {strconv.Itoa(ttl)}, "Content-Type": {"text/plain"}, "Server": {"EC2ws"}},
		ContentLength: int64(len(tok)), Body: io.NopCloser(strings.NewReader(tok))}
	if resp.Write(buf) == nil {
		buf.Flush()
	}
}

// setTTL sets the IPv4 TTL and IPv6 hop limit of a TCP connection.
func setTTL(conn net.Conn, hops int) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		if a, ok := conn.LocalAddr().(*net.TCPAddr); ok && a.IP.To4() == nil {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, hops)
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, hops)
	})
	if err != nil {
		return err
	}
	return serr
}

// roleLeaves are the iam/ entries of an instance with a role: info and the role's credentials.
func (h *Handler) roleLeaves(instanceID string) []entry {
	if h.roleSrc == nil {
		return nil
	}
	c := h.roleSrc(instanceID)
	creds := struct {
		Code            string
		LastUpdated     string
		Type            string
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		Token           string
		Expiration      string
	}{"Success", c.LastUpdated.Format(time.RFC3339), "AWS-HMAC", c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.Format(time.RFC3339)}
	sum := sha256.Sum256([]byte(h.role))
	info := struct {
		Code               string
		LastUpdated        string
		InstanceProfileArn string
		InstanceProfileID  string `json:"InstanceProfileId"`
	}{"Success", c.LastUpdated.Format(time.RFC3339), "arn:aws:iam::" + model.OwnerID + ":instance-profile/" + h.role,
		"AIPA" + strings.ToUpper(hex.EncodeToString(sum[:]))[:17]}
	cb, _ := json.MarshalIndent(creds, "", "  ")
	ib, _ := json.MarshalIndent(info, "", "  ")
	return []entry{{"iam/info", string(ib)}, {"iam/security-credentials/" + h.role, string(cb)}}
}

func (h *Handler) validToken(tok, instanceID string) bool {
	if tok == "" {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.tokens[tok]
	if !ok || t.instance != instanceID {
		return false
	}
	if h.now().After(t.expires) {
		delete(h.tokens, tok)
		return false
	}
	return true
}

// ErrUnknownCaller is what an Identify function returns for a caller that is no instance.
var ErrUnknownCaller = errors.New("caller is not a vpcsim instance")

// entry is one leaf of the metadata tree.
type entry struct{ path, value string }

func leaves(md *model.Metadata) []entry {
	host := hostname(md.Region, md.PrivateIP.String())
	es := []entry{
		{"ami-id", md.ImageID},
		{"ami-launch-index", "0"},
		{"hostname", host},
		{"instance-id", md.InstanceID},
		{"instance-type", md.InstanceType},
		{"local-hostname", host},
		{"local-ipv4", md.PrivateIP.String()},
		{"mac", md.MAC},
	}
	for _, ifc := range md.Interfaces {
		base := "network/interfaces/macs/" + ifc.MAC + "/"
		addrs := make([]string, len(ifc.Addrs))
		for i, a := range ifc.Addrs {
			addrs[i] = a.String()
		}
		es = append(es,
			entry{base + "device-number", strconv.Itoa(ifc.DeviceIndex)},
			entry{base + "interface-id", ifc.ENIID})
		if len(ifc.Prefixes) > 0 {
			ps := make([]string, len(ifc.Prefixes))
			for i, p := range ifc.Prefixes {
				ps[i] = p.String()
			}
			es = append(es, entry{base + "ipv4-prefix", strings.Join(ps, "\n")})
		}
		es = append(es,
			entry{base + "local-hostname", hostname(md.Region, addrs[0])},
			entry{base + "local-ipv4s", strings.Join(addrs, "\n")},
			entry{base + "mac", ifc.MAC},
			entry{base + "network-card", strconv.Itoa(ifc.NetworkCardIndex)},
			entry{base + "owner-id", model.OwnerID})
		if len(ifc.SecurityGroups) > 0 {
			es = append(es, entry{base + "security-group-ids", strings.Join(ifc.SecurityGroups, "\n")})
		}
		es = append(es,
			entry{base + "subnet-id", ifc.SubnetID},
			entry{base + "subnet-ipv4-cidr-block", ifc.SubnetCIDR.String()},
			entry{base + "vpc-id", ifc.VPCID})
		if len(ifc.VPCCIDRs) > 0 {
			cs := make([]string, len(ifc.VPCCIDRs))
			for i, c := range ifc.VPCCIDRs {
				cs[i] = c.String()
			}
			es = append(es,
				entry{base + "vpc-ipv4-cidr-block", cs[0]},
				entry{base + "vpc-ipv4-cidr-blocks", strings.Join(cs, "\n")})
		}
	}
	es = append(es,
		entry{"placement/availability-zone", md.AZ},
		entry{"placement/availability-zone-id", azID(md.AZ)},
		entry{"placement/region", md.Region},
		entry{"services/domain", "amazonaws.com"},
		entry{"services/partition", "aws"},
	)
	return es
}

func azID(az string) string {
	if az == "" {
		return ""
	}
	return az[:len(az)-1] + "-az" + strconv.Itoa(int(az[len(az)-1]-'a'+1))
}

func hostname(region, ip string) string {
	name := "ip-" + strings.ReplaceAll(ip, ".", "-")
	if region == "us-east-1" {
		return name + ".ec2.internal"
	}
	return name + "." + region + ".compute.internal"
}

// render returns the body for a path, or false for a missing key (404). extra are leaves
// beyond the instance's metadata (its role).
func render(md *model.Metadata, extra []entry, path string) (string, bool) {
	switch path {
	case "/":
		return "latest", true
	case "/latest", "/latest/":
		return "api/\ndynamic/\nmeta-data/", true
	case "/latest/dynamic", "/latest/dynamic/":
		return "instance-identity/", true
	case "/latest/dynamic/instance-identity", "/latest/dynamic/instance-identity/":
		return "document", true
	case identityPath:
		return identityDocument(md), true
	}
	if path == "/latest/meta-data" {
		path = metaDataPrefix
	}
	rel, ok := strings.CutPrefix(path, metaDataPrefix)
	if !ok {
		return "", false
	}
	rel = strings.TrimSuffix(rel, "/")
	es := leaves(md)
	if len(extra) > 0 {
		// In the listing's alphabetical place (iam/ comes before instance-id).
		at := len(es)
		for i, e := range es {
			if e.path > extra[0].path {
				at = i
				break
			}
		}
		es = append(es[:at:at], append(extra, es[at:]...)...)
	}
	for _, e := range es {
		if e.path == rel && !strings.HasSuffix(path, "/") {
			return e.value, true
		}
	}
	// A directory: list the direct children, directories with a trailing slash.
	dir := rel + "/"
	if rel == "" {
		dir = ""
	}
	var names []string
	seen := map[string]bool{}
	for _, e := range es {
		rest, ok := strings.CutPrefix(e.path, dir)
		if !ok {
			continue
		}
		name := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			name = rest[:i+1]
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "", false
	}
	return strings.Join(names, "\n"), true
}

func identityDocument(md *model.Metadata) string {
	doc := struct {
		AccountID               string   `json:"accountId"`
		Architecture            string   `json:"architecture"`
		AvailabilityZone        string   `json:"availabilityZone"`
		BillingProducts         []string `json:"billingProducts"`
		DevpayProductCodes      []string `json:"devpayProductCodes"`
		MarketplaceProductCodes []string `json:"marketplaceProductCodes"`
		ImageID                 string   `json:"imageId"`
		InstanceID              string   `json:"instanceId"`
		InstanceType            string   `json:"instanceType"`
		KernelID                *string  `json:"kernelId"`
		PendingTime             string   `json:"pendingTime"`
		PrivateIP               string   `json:"privateIp"`
		RamdiskID               *string  `json:"ramdiskId"`
		Region                  string   `json:"region"`
		Version                 string   `json:"version"`
	}{AccountID: model.OwnerID, Architecture: "x86_64", AvailabilityZone: md.AZ, ImageID: md.ImageID,
		InstanceID: md.InstanceID, InstanceType: md.InstanceType, PendingTime: md.LaunchTime.UTC().Format(time.RFC3339),
		PrivateIP: md.PrivateIP.String(), Region: md.Region, Version: "2017-09-30"}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return string(b)
}
