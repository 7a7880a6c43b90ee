// Package ec2api serves vpcsim's model over the EC2 Query protocol, API version 2016-11-15:
// form-encoded POST (or GET) with Action and Version, XML replies with <item> lists and
// EC2's XML error bodies, with the element names the AWS SDKs parse.
package ec2api

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/vpcnet/vpcnet/internal/vpcsim/model"
)

// bufPool recycles reply buffers: a large Describe reply is megabytes.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer keeps one huge reply from pinning its buffer for ever.
const maxPooledBuffer = 16 << 20

// Version is the EC2 API version vpcsim speaks.
const Version = "2016-11-15"

// maxBody bounds a request body.
const maxBody = 4 << 20

// Backend runs the calls. Admit applies the caller's permissions and the realism knobs
// (denied actions, throttling, injected failures, latency) before a call; Mutate commits a change; Read runs fn under the model's lock.
type Backend interface {
	Admit(ctx context.Context, action, caller string) error
	Mutate(ctx context.Context, mu model.Mutation) (any, error)
	Read(fn func(m *model.Model) error) error
}

// action handles one EC2 action: decode the parameters, run, build the reply.
type action func(ctx context.Context, b Backend, p params) (reply, error)

// Handler serves the EC2 Query API.
type Handler struct {
	b      Backend
	log    *slog.Logger
	tokens tokens
}

// NewHandler returns the EC2 API handler over a backend. log may be nil.
func NewHandler(b Backend, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{b: b, log: log}
}

// Actions lists the EC2 actions served.
func Actions() []string {
	out := make([]string, 0, len(actions))
	for a := range actions {
		out = append(out, a)
	}
	sortStrings(out)
	return out
}

// Authenticator checks who signed a request (SigV4), given its body, before anything in it is
// acted on. A Backend that implements it gets the caller it names in Admit; without it, Admit
// gets the access key ID the request claims, unchecked (the protocol tests).
type Authenticator interface {
	Authenticate(r *http.Request, body []byte) (caller string, err error)
}

// readBody reads a request's body, at most maxBody bytes.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, model.Errf(model.CodeMalformedQueryString, "The request body could not be read.")
	}
	if len(body) > maxBody {
		return nil, model.Errf(model.CodeInvalidParameterValue, "The request body is larger than %d bytes.", maxBody)
	}
	return body, nil
}

// ParseRequest reads the Query parameters of a request: the form body of a POST (already read
// into body), or the URL query of a GET.
func ParseRequest(r *http.Request, body []byte) (url.Values, error) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, model.Errf(model.CodeMalformedQueryString, "The query string is malformed: %v", err)
		}
		for k, v := range form {
			q[k] = append(q[k], v...)
		}
	}
	return q, nil
}

// accessKey extracts the access key ID from a SigV4 Authorization header ("" if none).
func accessKey(r *http.Request) string {
	h := r.Header.Get("Authorization")
	i := strings.Index(h, "Credential=")
	if i < 0 {
		return r.URL.Query().Get("X-Amz-Credential")
	}
	cred := h[i+len("Credential="):]
	if j := strings.IndexByte(cred, '/'); j >= 0 {
		return cred[:j]
	}
	return cred
}

func newRequestID() string {
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rand.Uint32(), rand.Uint32()&0xffff, rand.Uint32()&0xfff,
		0x8000|rand.Uint32()&0x3fff, rand.Uint64()&0xffffffffffff)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	name := "?"
	defer func() {
		if v := recover(); v != nil {
			h.log.Error("ec2api: panic", "action", name, "panic", v, "stack", string(debug.Stack()))
			writeError(w, reqID, model.Internal())
		}
	}()
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		writeError(w, reqID, model.Errf(model.CodeInvalidParameterValue, "Method %s is not supported; use POST.", r.Method))
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, reqID, err)
		return
	}
	caller := accessKey(r)
	if a, ok := h.b.(Authenticator); ok {
		if caller, err = a.Authenticate(r, body); err != nil {
			h.log.Debug("ec2api: authentication", "err", err)
			writeError(w, reqID, err)
			return
		}
	}
	q, err := ParseRequest(r, body)
	if err != nil {
		writeError(w, reqID, err)
		return
	}
	name = q.Get("Action")
	rep, err := h.Serve(r.Context(), q, caller)
	if err != nil {
		var me *model.Error
		if errors.As(err, &me) && me.Status >= 500 {
			h.log.Warn("ec2api: error", "action", name, "code", me.Code)
		} else {
			h.log.Debug("ec2api: error", "action", name, "err", err)
		}
		writeError(w, reqID, err)
		return
	}
	rep.setMeta(reqID)
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBuffer {
			bufPool.Put(buf)
		}
	}()
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(buf).EncodeElement(rep, rootElement(name)); err != nil {
		writeError(w, reqID, model.Internal())
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("x-amzn-RequestId", reqID)
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// Serve runs one parsed request from caller (as Authenticate named it) and returns the reply
// without its request ID.
func (h *Handler) Serve(ctx context.Context, q url.Values, caller string) (reply, error) {
	name := q.Get("Action")
	if name == "" {
		return nil, model.Missing("Action")
	}
	act, ok := actions[name]
	if !ok {
		return nil, model.Errf(model.CodeInvalidAction, "The action %s is not valid for this web service.", name)
	}
	switch v := q.Get("Version"); v {
	case "":
		return nil, model.Missing("Version")
	case Version:
	default:
		return nil, model.Errf(model.CodeNoSuchVersion, "An invalid or out-of-range value '%s' was supplied for the API version. vpcsim speaks %s.", v, Version)
	}
	if err := h.b.Admit(ctx, name, caller); err != nil {
		return nil, err
	}
	p := params(q)
	if dry, err := p.boolOpt("DryRun"); err != nil {
		return nil, err
	} else if dry {
		return nil, &model.Error{Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set.", Status: http.StatusPreconditionFailed}
	}
	return h.tokens.do(caller, name, q, func() (reply, error) { return act(ctx, h.b, p) })
}

func writeError(w http.ResponseWriter, reqID string, err error) {
	var me *model.Error
	if !errors.As(err, &me) {
		me = model.Internal()
	}
	status := me.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	xml.NewEncoder(&buf).Encode(errorReply{Errors: []xError{{Code: me.Code, Message: me.Message}}, RequestID: reqID})
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("x-amzn-RequestId", reqID)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
